-- RFC 7591 dynamic client registration and RFC 7592 management. The client
-- itself is a row of `apps` (registration = 'dynamic', no owner org); what
-- only a self-registered client has lives here.

-- The registration access token (RFC 7592) of each dynamic client, as its
-- SHA-256: the management endpoint finds the client by it.
CREATE TABLE client_registrations (
  app_id                      TEXT PRIMARY KEY,
  token_hash                  TEXT NOT NULL UNIQUE,
  -- 'none', 'client_secret_basic' or 'client_secret_post', as registered
  -- (the token endpoint accepts either secret method of a confidential client).
  token_endpoint_auth_method  TEXT NOT NULL,
  -- The initial access token it was registered with (DCR=initial_access_token).
  initial_token_id            TEXT,
  created_at                  INTEGER NOT NULL
);

-- Whoever deletes a client (RFC 7592 DELETE, the sweep of unused ones), its
-- registration access token dies with it.
CREATE TRIGGER forget_client_registration AFTER DELETE ON apps
BEGIN
  DELETE FROM client_registrations WHERE app_id = OLD.id;
END;

-- Initial access tokens (RFC 7591 §3, DCR=initial_access_token), minted by the
-- platform through /admin/v1/initial-access-tokens: SHA-256 only, an expiry,
-- and optionally a number of registrations they allow.
CREATE TABLE initial_access_tokens (
  id          TEXT PRIMARY KEY,
  hash        TEXT NOT NULL UNIQUE,
  label       TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  max_uses    INTEGER,                          -- NULL: any number until expiry
  uses        INTEGER NOT NULL DEFAULT 0,
  revoked_at  INTEGER
);
