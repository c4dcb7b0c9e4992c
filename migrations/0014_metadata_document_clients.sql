-- Client ID Metadata Documents (src/cimd.rs): a client identified by an
-- https URL is materialised as an apps row (registration =
-- 'metadata_document', id = the URL) so codes, grants and tokens work
-- unchanged. Its document is fetched again once the cached copy expires
-- (HTTP caching, bounded to 24 h; 0 for `no-store`): authorize refetches a
-- row whose metadata_expires_at has passed.
ALTER TABLE apps ADD COLUMN metadata_expires_at INTEGER;
