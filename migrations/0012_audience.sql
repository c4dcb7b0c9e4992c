-- RFC 8707 resource indicators: the audience (a JSON array of resource
-- identifiers from RESOURCES) that a code was approved for, that its grant
-- keeps (the most a refresh can ask for), and that each token may be used at
-- (an access token's may be narrower than its grant's). NULL on rows written
-- before this migration: the default audience, the first listed resource,
-- which is what every token was implicitly for until then.
ALTER TABLE codes ADD COLUMN audience TEXT;
ALTER TABLE grants ADD COLUMN audience TEXT;
ALTER TABLE tokens ADD COLUMN audience TEXT;
