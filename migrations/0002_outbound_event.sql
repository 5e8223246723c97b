-- The durable outbound queue (cloud-protocol §6). An event is committed here
-- before its originator is told it is accepted; `seq` is the queue order (the
-- commit order, not occurred_at order).
CREATE TABLE outbound_event (
  seq          bigserial PRIMARY KEY,
  client_id    uuid NOT NULL UNIQUE,
  type         text NOT NULL CHECK (type IN ('visitor_entry', 'ban_hit', 'frigate_event',
                                             'guard_note', 'compose_result')),
  occurred_at  timestamptz NOT NULL,
  data         jsonb NOT NULL,
  size_bytes   integer NOT NULL,
  enqueued_at  timestamptz NOT NULL DEFAULT now(),
  acked_at     timestamptz
);
-- Draining reads only unacknowledged rows; without a partial index every batch
-- would rescan the acknowledged ones kept for 7 days.
CREATE INDEX outbound_event_unacked ON outbound_event (seq) WHERE acked_at IS NULL;
CREATE INDEX outbound_event_acked_at ON outbound_event (acked_at) WHERE acked_at IS NOT NULL;
