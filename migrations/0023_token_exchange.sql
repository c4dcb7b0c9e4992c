-- Token exchange (RFC 8693, issue 20 item 1).
--
-- apps.token_exchange: the client's exchange policy (JSON, see
-- grants/token_exchange/policy.rs); NULL: the client may not exchange.
ALTER TABLE apps ADD COLUMN token_exchange TEXT;

-- An exchange issues into a grant of its own (source 'token_exchange'): the
-- exchanging client's, for the subject's user and org. It records the grant
-- it was exchanged from (parent_grant_id), the first grant of the chain
-- (root_grant_id) and every ancestor as '/id1/id2/…/' (lineage), and the
-- `act` claim (RFC 8693 §4.1, JSON) its tokens carry.
ALTER TABLE grants ADD COLUMN parent_grant_id TEXT;
ALTER TABLE grants ADD COLUMN root_grant_id TEXT;
ALTER TABLE grants ADD COLUMN lineage TEXT;
ALTER TABLE grants ADD COLUMN act TEXT;
CREATE INDEX grants_root ON grants(root_grant_id) WHERE root_grant_id IS NOT NULL;
CREATE INDEX grants_parent ON grants(parent_grant_id) WHERE parent_grant_id IS NOT NULL;

-- Revoking a grant, by any path (the user, an admin, logout, refresh token
-- reuse, an operator's own SQL), revokes every grant exchanged from it, down
-- the whole chain, in the same statement. One UPDATE over the chain's root
-- (indexed) reaches every descendant, so the trigger need not recurse; the
-- bearer eviction trigger of 0003 fires for each revoked descendant.
CREATE TRIGGER revoke_exchanged_grants AFTER UPDATE OF revoked_at ON grants
  WHEN NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL
BEGIN
  UPDATE grants SET revoked_at = NEW.revoked_at
   WHERE root_grant_id = COALESCE(NEW.root_grant_id, NEW.id)
     AND instr(lineage, '/' || NEW.id || '/') > 0 AND revoked_at IS NULL;
END;
