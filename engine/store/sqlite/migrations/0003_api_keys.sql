-- 0003: API keys for the HTTP API (P1). Only a hash of each key is stored.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  scopes TEXT NOT NULL,            -- JSON list of permissions
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
