-- The refresh token a refresh token was rotated from. Under a reuse grace
-- window (REFRESH_REUSE_GRACE_SECONDS) one token can have several successors
-- (siblings); once one of them is used, the others may not rotate, so a
-- replayed copy cannot grow a chain of its own next to the rightful one.
ALTER TABLE tokens ADD COLUMN parent TEXT;
CREATE INDEX tokens_parent ON tokens(parent) WHERE parent IS NOT NULL;
