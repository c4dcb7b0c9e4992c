-- Browsers a user has signed in on (a random "device cookie", stored only as
-- its SHA-256). A sign-in from such a browser is not subject to the
-- account-wide failure counter, so failures from elsewhere cannot lock the
-- rightful user out of a browser they use (OWASP device cookies).
CREATE TABLE signin_devices (
  hash        TEXT NOT NULL,
  user_id     TEXT NOT NULL REFERENCES users(id),
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  PRIMARY KEY (hash, user_id)
);
CREATE INDEX signin_devices_user ON signin_devices(user_id, expires_at);
-- For the scheduled sweep of expired rows.
CREATE INDEX signin_devices_expiry ON signin_devices(expires_at);
