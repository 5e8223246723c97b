-- The outcome of a software update (cloud-protocol §6, §7.6) is an event of
-- its own. An expand migration: a version before it never writes the new
-- type and sends whatever rows the queue holds, so a rollback to it still
-- runs on this schema (docs/updates.md).
ALTER TABLE outbound_event DROP CONSTRAINT outbound_event_type_check;
ALTER TABLE outbound_event ADD CONSTRAINT outbound_event_type_check
  CHECK (type IN ('visitor_entry', 'ban_hit', 'frigate_event', 'guard_note', 'compose_result', 'update_result'));
