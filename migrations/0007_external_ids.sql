-- The platform's own identifiers (issue 9): the provisioning API and login
-- challenges address orgs and users by the id the platform already has, so the
-- platform never has to remember ours. NULL for rows created another way.
ALTER TABLE orgs ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX orgs_external_id ON orgs(external_id) WHERE external_id IS NOT NULL;
ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX users_external_id ON users(external_id) WHERE external_id IS NOT NULL;
