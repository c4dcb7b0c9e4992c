-- Installs, consents, audit log, webhooks, rate limits (issue: everything the
-- five platforms promise).

-- Fluxer's application flags, and the per-app webhook signing secret. The
-- signing secret is kept in plaintext because HMAC needs it; it authorizes
-- nothing at this server.
ALTER TABLE apps ADD COLUMN bot_public INTEGER NOT NULL DEFAULT 1;
ALTER TABLE apps ADD COLUMN bot_require_code_grant INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN webhook_secret TEXT;

-- How the grant came to be: a consent (authorization_code) or the app on its
-- own (client_credentials). One live grant per (app, org, actor, user, source).
ALTER TABLE grants ADD COLUMN source TEXT NOT NULL DEFAULT 'authorization_code';
CREATE INDEX grants_live ON grants(app_id, org_id, actor, user_id) WHERE revoked_at IS NULL;

-- An app installed into a target org (FeatureOS). app_actor = an admin
-- installed it with the bot identity, which client_credentials needs.
CREATE TABLE installs (
  app_id        TEXT NOT NULL,
  org_id        TEXT NOT NULL,
  app_actor     INTEGER NOT NULL DEFAULT 0,
  scopes        TEXT NOT NULL DEFAULT '[]',     -- JSON array consented for the app actor
  installed_by  TEXT,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  revoked_at    INTEGER,
  PRIMARY KEY (app_id, org_id)
);
CREATE INDEX installs_org ON installs(org_id);

-- What a user already approved, so they are not asked again (prompt=none works).
CREATE TABLE consents (
  user_id     TEXT NOT NULL,
  app_id      TEXT NOT NULL,
  org_id      TEXT NOT NULL,
  actor       TEXT NOT NULL,
  scopes      TEXT NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (user_id, app_id, org_id, actor)
);

CREATE TABLE audit_events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  org_id      TEXT NOT NULL,
  at          INTEGER NOT NULL,
  actor_type  TEXT NOT NULL,                    -- user | app | api_key
  actor_id    TEXT NOT NULL,
  app_id      TEXT,
  action      TEXT NOT NULL,
  detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_org ON audit_events(org_id, id);

-- Which events an app wants from an org (needs webhooks:manage in that org).
CREATE TABLE webhook_subscriptions (
  app_id      TEXT NOT NULL,
  org_id      TEXT NOT NULL,
  events      TEXT NOT NULL,                    -- JSON array
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (app_id, org_id)
);

CREATE TABLE webhook_deliveries (
  id               TEXT PRIMARY KEY,
  app_id           TEXT NOT NULL,
  org_id           TEXT,
  event            TEXT NOT NULL,
  url              TEXT NOT NULL,
  payload          TEXT NOT NULL,
  status           TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered | failed
  attempts         INTEGER NOT NULL DEFAULT 0,
  last_status      INTEGER,
  last_error       TEXT,
  next_attempt_at  INTEGER,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
CREATE INDEX deliveries_app ON webhook_deliveries(app_id, created_at);
CREATE INDEX deliveries_due ON webhook_deliveries(status, next_attempt_at);

-- Failure counters for sign-in and client authentication, per fixed window.
CREATE TABLE rate_limits (
  key           TEXT PRIMARY KEY,
  window_start  INTEGER NOT NULL,
  count         INTEGER NOT NULL
);
