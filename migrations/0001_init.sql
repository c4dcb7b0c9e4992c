-- Schema of the edge OAuth server. D1 (SQLite) is the record of everything;
-- the same file runs in the native test store (rusqlite).
-- Times are unix seconds. Secrets, codes and tokens are stored only as
-- lowercase hex SHA-256 of the plaintext.

CREATE TABLE orgs (
  id          TEXT PRIMARY KEY,
  slug        TEXT NOT NULL UNIQUE,
  name        TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);

CREATE TABLE users (
  id             TEXT PRIMARY KEY,
  email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
  name           TEXT NOT NULL,
  password_hash  TEXT NOT NULL,
  created_at     INTEGER NOT NULL
);

CREATE TABLE memberships (
  org_id   TEXT NOT NULL REFERENCES orgs(id),
  user_id  TEXT NOT NULL REFERENCES users(id),
  role     TEXT NOT NULL,
  PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

-- What each role may do. Scope names double as permission names, so the
-- effective permissions of a token are (granted scopes) ∩ (role permissions).
CREATE TABLE role_permissions (
  role        TEXT NOT NULL,
  permission  TEXT NOT NULL,
  PRIMARY KEY (role, permission)
);

-- The scope catalogue: what an app may declare and a user sees on consent.
CREATE TABLE scopes (
  name         TEXT PRIMARY KEY,
  description  TEXT NOT NULL
);

CREATE TABLE api_keys (
  hash        TEXT PRIMARY KEY,
  org_id      TEXT NOT NULL REFERENCES orgs(id),
  name        TEXT NOT NULL,
  role        TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);

CREATE TABLE sessions (
  hash        TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL REFERENCES users(id),
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);

CREATE TABLE apps (
  id                 TEXT PRIMARY KEY,          -- the client_id
  owner_org_id       TEXT NOT NULL REFERENCES orgs(id),
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
  updated_at         INTEGER NOT NULL
);
CREATE INDEX apps_owner ON apps(owner_org_id);

-- Authorization codes (RFC 6749 §4.1.2): single use, bound to client,
-- redirect URI and PKCE challenge. grant_id is set at redemption so a replay
-- can find and revoke what the first redemption issued.
CREATE TABLE codes (
  hash          TEXT PRIMARY KEY,
  app_id        TEXT NOT NULL,
  org_id        TEXT NOT NULL,
  user_id       TEXT,
  actor         TEXT NOT NULL,
  scopes        TEXT NOT NULL,                  -- JSON array
  redirect_uri  TEXT NOT NULL,
  challenge     TEXT,                           -- S256 code_challenge
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  used_at       INTEGER,
  grant_id      TEXT
);
CREATE INDEX codes_expiry ON codes(expires_at);

-- A grant is one token family: everything issued from one consent (or one
-- client_credentials request). Revoking the grant kills every token in it.
CREATE TABLE grants (
  id          TEXT PRIMARY KEY,
  app_id      TEXT NOT NULL,
  org_id      TEXT NOT NULL,
  user_id     TEXT,
  actor       TEXT NOT NULL,
  scopes      TEXT NOT NULL,                    -- JSON array, as consented
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);
CREATE INDEX grants_app ON grants(app_id, org_id);
CREATE INDEX grants_user ON grants(user_id);

CREATE TABLE tokens (
  hash        TEXT PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
  grant_id    TEXT NOT NULL,
  scopes      TEXT NOT NULL,                    -- JSON array, may be narrower than the grant
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER,                          -- NULL: until revoked (refresh only)
  used_at     INTEGER,                          -- refresh: when it was rotated
  rotated_to  TEXT,                             -- refresh: hash of its successor
  revoked_at  INTEGER
);
CREATE INDEX tokens_grant ON tokens(grant_id);
CREATE INDEX tokens_expiry ON tokens(expires_at);
