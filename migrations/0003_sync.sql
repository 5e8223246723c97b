-- Sync down (cloud-protocol §5): snapshot chunks are staged here with COPY as
-- they arrive and swapped into the entity's table in one transaction after the
-- last chunk, so a reader sees the old set or the new one and a crash at any
-- moment leaves the old set. Rows are kept as the cloud's JSON; the swap maps
-- them to columns.
CREATE UNLOGGED TABLE snapshot_staging (
  entity      text NOT NULL,
  snapshot_id text NOT NULL,
  chunk       integer NOT NULL,
  seq         integer NOT NULL,
  row_data    jsonb NOT NULL,
  PRIMARY KEY (entity, snapshot_id, chunk, seq)
);

-- The version of the entity's last snapshot: a delta change for an id the
-- snapshot did not hold must be above it to apply.
ALTER TABLE sync_cursor ADD COLUMN snapshot_version bigint NOT NULL DEFAULT 0;

-- Reads the LAN serves: active bans by plate, guards by id.
CREATE INDEX banned_visitor_plate ON banned_visitor (plate) WHERE NOT deleted;
