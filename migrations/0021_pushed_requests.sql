-- Pushed authorization requests (RFC 9126, issue 19): what a client pushed to
-- POST /oauth/par, kept here so the browser carries only `client_id` and
-- `request_uri`. `hash` is the SHA-256 of the request_uri's random part;
-- `params` the pushed form (client authentication removed) as a query string.
-- A row is presentable until `expires_at` (PAR_TTL_SECONDS after the push; the
-- first presentation at authorize extends it for the sign-in and consent that
-- follow), and spent once a code is issued from it (`used_at`, `used_by` = the
-- code's hash, in the code's own batch). The sweep deletes expired rows.
CREATE TABLE pushed_requests (
  hash TEXT PRIMARY KEY,
  app_id TEXT NOT NULL,
  params TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  presented_at INTEGER,
  used_at INTEGER,
  used_by TEXT
);
CREATE INDEX pushed_requests_expires ON pushed_requests(expires_at);
