-- 0002: settings the engine keeps for itself (e.g. a generated link-signing secret).
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
