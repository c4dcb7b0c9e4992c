-- Clients that register themselves (RFC 7591 dynamic registration) or are
-- identified by a metadata document URL (CIMD) belong to no org until an
-- org installs or authorizes them: owner_org_id becomes nullable, and
-- `registration` says how a client came to exist. SQLite cannot drop a NOT
-- NULL constraint in place, so the table is rebuilt; no foreign key points
-- at apps, and its one trigger is recreated below.
CREATE TABLE apps_new (
  id                 TEXT PRIMARY KEY,          -- the client_id
  owner_org_id       TEXT REFERENCES orgs(id),  -- NULL: a self-registered client
  name               TEXT NOT NULL,
  description        TEXT NOT NULL DEFAULT '',
  homepage_url       TEXT,
  terms_url          TEXT,
  privacy_url        TEXT,
  icon               TEXT,
  redirect_uris      TEXT NOT NULL,             -- JSON array
  scopes             TEXT NOT NULL,             -- JSON array, declared scopes
  client_type        TEXT NOT NULL CHECK (client_type IN ('confidential', 'public')),
  actor_modes        TEXT NOT NULL,             -- JSON array of 'app' / 'self'
  secret_hash        TEXT,
  secret_expires_at  INTEGER,
  webhook_url        TEXT,
  webhook_events     TEXT NOT NULL DEFAULT '[]',
  status             TEXT NOT NULL DEFAULT 'active',
  version            INTEGER NOT NULL DEFAULT 1,
  created_by         TEXT,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  bot_public         INTEGER NOT NULL DEFAULT 1,
  bot_require_code_grant INTEGER NOT NULL DEFAULT 0,
  webhook_secret     TEXT,
  -- 'platform': created through /api/v1/apps or the back office;
  -- 'dynamic': RFC 7591; 'metadata_document': a CIMD URL.
  registration       TEXT NOT NULL DEFAULT 'platform'
                     CHECK (registration IN ('platform', 'dynamic', 'metadata_document')),
  -- Last time the client was sent through authorize or issued a token; the
  -- sweep removes self-registered clients that never were.
  last_used_at       INTEGER,
  CHECK (owner_org_id IS NOT NULL OR registration <> 'platform')
);

INSERT INTO apps_new (id, owner_org_id, name, description, homepage_url, terms_url, privacy_url, icon,
  redirect_uris, scopes, client_type, actor_modes, secret_hash, secret_expires_at, webhook_url,
  webhook_events, status, version, created_by, created_at, updated_at, bot_public,
  bot_require_code_grant, webhook_secret)
SELECT id, owner_org_id, name, description, homepage_url, terms_url, privacy_url, icon,
  redirect_uris, scopes, client_type, actor_modes, secret_hash, secret_expires_at, webhook_url,
  webhook_events, status, version, created_by, created_at, updated_at, bot_public,
  bot_require_code_grant, webhook_secret
FROM apps;

DROP TABLE apps;
ALTER TABLE apps_new RENAME TO apps;
CREATE INDEX apps_owner ON apps(owner_org_id);
CREATE INDEX apps_self_registered ON apps(registration, last_used_at) WHERE registration <> 'platform';

CREATE TRIGGER evict_changed_app AFTER UPDATE OF status, scopes ON apps
  WHEN OLD.status IS NOT NEW.status OR OLD.scopes IS NOT NEW.scopes
BEGIN
  INSERT OR IGNORE INTO bearer_evictions
    SELECT t.hash, unixepoch() FROM grants g JOIN tokens t ON t.grant_id = g.id
    WHERE g.app_id = NEW.id AND t.mirrored = 1;
END;
