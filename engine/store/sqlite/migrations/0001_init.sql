-- 0001: the whole first schema. Never edit a released migration: add the next number.
CREATE TABLE cadences (
  id TEXT PRIMARY KEY,
  module TEXT NOT NULL,
  name TEXT NOT NULL,
  status TEXT NOT NULL,            -- draft | active | inactive (C2)
  draft TEXT,                      -- JSON definition being edited
  active_version INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX cadences_module ON cadences(module, status);

CREATE TABLE cadence_versions (
  cadence_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  definition TEXT NOT NULL,        -- immutable once published (V1)
  published_at INTEGER NOT NULL,
  published_by TEXT NOT NULL,
  PRIMARY KEY (cadence_id, version)
);

CREATE TABLE records (
  module TEXT NOT NULL,
  id TEXT NOT NULL,
  data TEXT NOT NULL,
  unsubscribed INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (module, id)
);

CREATE TABLE enrollments (
  id TEXT PRIMARY KEY,
  cadence_id TEXT NOT NULL,
  record_id TEXT NOT NULL,
  module TEXT NOT NULL,
  status TEXT NOT NULL,
  rev INTEGER NOT NULL,            -- optimistic concurrency: every commit checks and bumps it
  state TEXT NOT NULL,             -- the machine's Enrollment as JSON
  started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (cadence_id, record_id)
);
CREATE INDEX enrollments_record ON enrollments(record_id);
CREATE INDEX enrollments_cadence ON enrollments(cadence_id, status);

-- Every timer is a row indexed by due time: a tick reads only what is due (O(due), not O(enrolled)).
-- priority orders timers due at the same instant: un-enrollment (0) before follow-ups (1) (U6).
CREATE TABLE timers (
  id TEXT PRIMARY KEY,             -- e:<enrollment> | u4:<cadence> | e7:<cadence>
  kind TEXT NOT NULL,
  cadence_id TEXT NOT NULL,
  due_at INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  locked_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX timers_due ON timers(due_at, priority);

-- The outbox: written in the same transaction as the state change that caused it (D1, D2).
CREATE TABLE outbox (
  key TEXT PRIMARY KEY,            -- idempotency key handed to the host
  enrollment_id TEXT NOT NULL,
  cadence_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  record_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,            -- pending | done | dead | cancelled
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at INTEGER NOT NULL,
  locked_until INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  done_at INTEGER,
  last_error TEXT
);
CREATE INDEX outbox_pending ON outbox(available_at) WHERE status = 'pending';
CREATE INDEX outbox_cadence ON outbox(cadence_id, node_id);

CREATE TABLE outcomes (
  key TEXT NOT NULL,
  cadence_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  outcome TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (key, outcome)
);
CREATE INDEX outcomes_cadence ON outcomes(cadence_id, node_id);

CREATE TABLE audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  cadence_id TEXT,
  enrollment_id TEXT,
  record_id TEXT,
  actor TEXT NOT NULL,
  event TEXT NOT NULL,
  reason TEXT NOT NULL,
  data TEXT
);
CREATE INDEX audit_enrollment ON audit(enrollment_id, seq);
CREATE INDEX audit_record ON audit(record_id, seq);
CREATE INDEX audit_cadence ON audit(cadence_id, seq);

-- Counters: emails per sender per local day (F12), enrollments per cadence per hour/day (E9).
CREATE TABLE counters (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);
