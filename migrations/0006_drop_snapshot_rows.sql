-- secbox: contract
-- Snapshots are now built in `<table>_next` (a copy of the table's columns,
-- constraints and indexes, made at each snapshot's chunk 1) and renamed into
-- place after the last chunk, so the staging tables of 0004 are no longer
-- used. A contract migration: the version before this one stages there, so
-- the tables go only once this version has passed its trial
-- (docs/updates.md).
DROP TABLE snapshot_rows_community;
DROP TABLE snapshot_rows_unit;
DROP TABLE snapshot_rows_user;
DROP TABLE snapshot_rows_guest_authorization;
DROP TABLE snapshot_rows_banned_visitor;
