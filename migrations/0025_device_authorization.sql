-- Device authorization grant (RFC 8628, issue 20 item 3).
-- apps.device_authorization: the per-client switch (off by default); only a
-- client with it on may start the flow at POST /oauth/device_authorization.
ALTER TABLE apps ADD COLUMN device_authorization INTEGER NOT NULL DEFAULT 0;
-- One row per device authorization request. `hash` is the SHA-256 of the
-- device_code; `user_code_hash` the SHA-256 of the normalised user code
-- (8 letters, upper case, no dash), unique so a typed code names one row.
-- `status` moves once: pending -> approved | denied (the user's decision on
-- /device, `decided_at`, with the approving user, org and sign-in facts).
-- `poll_interval` grows by 5 on each poll sooner than it (slow_down, §3.5);
-- `attempts` counts the verification form's submissions naming this code.
-- `used_at`/`grant_id`: the token request that redeemed it (single use).
-- The sweep deletes rows once expired.
CREATE TABLE device_codes (
  hash TEXT PRIMARY KEY,
  user_code_hash TEXT NOT NULL UNIQUE,
  app_id TEXT NOT NULL,
  scopes TEXT NOT NULL,
  audience TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  poll_interval INTEGER NOT NULL,
  last_poll_at INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
  decided_at INTEGER,
  org_id TEXT,
  user_id TEXT,
  actor TEXT,
  auth_time INTEGER,
  acr TEXT,
  amr TEXT,
  sid TEXT,
  used_at INTEGER,
  grant_id TEXT
);
CREATE INDEX device_codes_expires ON device_codes (expires_at);
CREATE INDEX device_codes_app ON device_codes (app_id, expires_at);
