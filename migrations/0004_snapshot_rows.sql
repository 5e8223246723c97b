-- Snapshot chunks are staged as typed rows, one table per entity, with COPY
-- as they arrive: the swap after the last chunk is then one INSERT … SELECT
-- with casts, not a JSON extraction of every field of every row. Columns are
-- text (bar version) so that a value the server refuses is found at the swap,
-- inside its transaction, and answered as invalid_args; the old set stays.
-- Unlogged: a crash loses a partial snapshot, which the cloud sends again.
DROP TABLE snapshot_staging;
CREATE UNLOGGED TABLE snapshot_rows_community (
  id text NOT NULL, version bigint, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 text, c8 text);
CREATE UNLOGGED TABLE snapshot_rows_unit (
  id text NOT NULL, version bigint, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 text, c8 text);
CREATE UNLOGGED TABLE snapshot_rows_user (
  id text NOT NULL, version bigint, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 text, c8 text);
CREATE UNLOGGED TABLE snapshot_rows_guest_authorization (
  id text NOT NULL, version bigint, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 text, c8 text);
CREATE UNLOGGED TABLE snapshot_rows_banned_visitor (
  id text NOT NULL, version bigint, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 text, c8 text);
