-- Delegated sign-in (issue 9, README "Delegated sign-in"): a login challenge
-- hands one pending authorization request to the platform's login page; the
-- platform accepts (or rejects) it server-to-server, and the browser comes back
-- with a verifier. Both are random and stored only as SHA-256; each is single
-- use. No foreign key on user_id: deleting a user must not wait for its
-- challenges (the landing joins users, so a deleted user simply gets nothing).
CREATE TABLE login_challenges (
  challenge_hash     TEXT PRIMARY KEY,
  -- SHA-256 of the eo_login cookie set when the browser was sent away: the
  -- verifier only works in the browser the challenge was issued to.
  browser_hash       TEXT NOT NULL,
  client_id          TEXT NOT NULL,
  -- The validated authorize parameters, as a canonical query string.
  request            TEXT NOT NULL,
  created_at         INTEGER NOT NULL,
  expires_at         INTEGER NOT NULL,
  -- Set once by accept or reject.
  decided_at         INTEGER,
  verifier_hash      TEXT UNIQUE,
  user_id            TEXT,
  error              TEXT,
  error_description  TEXT,
  -- Set once when the browser presents the verifier; used_by marks which
  -- landing consumed it, so only that landing's session insert can follow.
  used_at            INTEGER,
  used_by            TEXT
);
CREATE INDEX login_challenges_expiry ON login_challenges(expires_at);
