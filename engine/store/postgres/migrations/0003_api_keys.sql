CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  scopes JSONB NOT NULL,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
);
