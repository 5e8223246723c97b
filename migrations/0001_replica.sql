-- The local replica of the community's data (cloud-protocol §5).
-- Every row carries the version the cloud gave it; a delete leaves a tombstone
-- (deleted = true, data columns null) that keeps its version, so repeated or
-- reordered deltas cannot resurrect or overwrite newer data. Readers filter
-- on NOT deleted.

CREATE TABLE community (
  id         text PRIMARY KEY,
  version    bigint NOT NULL,
  deleted    boolean NOT NULL DEFAULT false,
  name       text,
  timezone   text,
  CHECK (deleted OR (name IS NOT NULL AND timezone IS NOT NULL))
);

CREATE TABLE unit (
  id           text PRIMARY KEY,
  version      bigint NOT NULL,
  deleted      boolean NOT NULL DEFAULT false,
  community_id text,
  label        text,
  CHECK (deleted OR (community_id IS NOT NULL AND label IS NOT NULL))
);

-- The protocol's `user` entity ("user" is a reserved word in SQL).
CREATE TABLE app_user (
  id           text PRIMARY KEY,
  version      bigint NOT NULL,
  deleted      boolean NOT NULL DEFAULT false,
  community_id text,
  role         text CHECK (role IN ('guard', 'admin', 'resident')),
  display_name text,
  pin_hash     text,
  CHECK (deleted OR (community_id IS NOT NULL AND role IS NOT NULL AND display_name IS NOT NULL))
);

CREATE TABLE guest_authorization (
  id           text PRIMARY KEY,
  version      bigint NOT NULL,
  deleted      boolean NOT NULL DEFAULT false,
  community_id text,
  unit_id      text,
  guest_name   text,
  plate        text,
  valid_from   timestamptz,
  valid_until  timestamptz,
  max_entries  integer,
  status       text CHECK (status IN ('active', 'revoked', 'used')),
  CHECK (deleted OR (community_id IS NOT NULL AND unit_id IS NOT NULL AND guest_name IS NOT NULL
                     AND valid_from IS NOT NULL AND valid_until IS NOT NULL AND status IS NOT NULL))
);
CREATE INDEX guest_authorization_validity ON guest_authorization (valid_from, valid_until)
  WHERE NOT deleted;

CREATE TABLE banned_visitor (
  id           text PRIMARY KEY,
  version      bigint NOT NULL,
  deleted      boolean NOT NULL DEFAULT false,
  community_id text,
  full_name    text,
  plate        text,
  photo_url    text,
  reason       text,
  created_at   timestamptz,
  expires_at   timestamptz,
  CHECK (deleted OR (community_id IS NOT NULL AND full_name IS NOT NULL AND reason IS NOT NULL
                     AND created_at IS NOT NULL))
);

-- One row per entity: how far the replica has synced, stored in the same
-- transaction as the data it describes.
CREATE TABLE sync_cursor (
  entity           text PRIMARY KEY
                   CHECK (entity IN ('community', 'unit', 'user', 'guest_authorization',
                                     'banned_visitor')),
  version          bigint NOT NULL DEFAULT 0,
  last_applied_at  timestamptz,
  last_snapshot_at timestamptz,
  snapshot_id      text
);
INSERT INTO sync_cursor (entity) VALUES
  ('community'), ('unit'), ('user'), ('guest_authorization'), ('banned_visitor');
