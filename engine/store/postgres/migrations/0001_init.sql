-- 0001: the whole first schema (PostgreSQL). Never edit a released migration: add the next number.
CREATE TABLE cadences (
  id TEXT PRIMARY KEY,
  module TEXT NOT NULL,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  draft JSONB,
  active_version INTEGER,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX cadences_module ON cadences(module, status);

CREATE TABLE cadence_versions (
  cadence_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  definition JSONB NOT NULL,
  published_at BIGINT NOT NULL,
  published_by TEXT NOT NULL,
  PRIMARY KEY (cadence_id, version)
);

CREATE TABLE records (
  module TEXT NOT NULL,
  id TEXT NOT NULL,
  data JSONB NOT NULL,
  unsubscribed BOOLEAN NOT NULL DEFAULT FALSE,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (module, id)
);
CREATE INDEX records_email ON records (lower(data->>'Email'));

CREATE TABLE enrollments (
  id TEXT PRIMARY KEY,
  cadence_id TEXT NOT NULL,
  record_id TEXT NOT NULL,
  module TEXT NOT NULL,
  status TEXT NOT NULL,
  rev INTEGER NOT NULL,
  state JSONB NOT NULL,
  started_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE (cadence_id, record_id)
);
CREATE INDEX enrollments_record ON enrollments(record_id);
CREATE INDEX enrollments_cadence ON enrollments(cadence_id, status);

-- Timers are rows indexed by due time; claims use FOR UPDATE SKIP LOCKED and a lease (locked_until).
CREATE TABLE timers (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  cadence_id TEXT NOT NULL,
  due_at BIGINT NOT NULL,
  priority INTEGER NOT NULL,
  locked_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX timers_due ON timers(due_at, priority);

CREATE TABLE outbox (
  key TEXT PRIMARY KEY,
  enrollment_id TEXT NOT NULL,
  cadence_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  record_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  payload JSONB NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at BIGINT NOT NULL,
  locked_until BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  done_at BIGINT,
  last_error TEXT
);
CREATE INDEX outbox_pending ON outbox(available_at) WHERE status = 'pending';
CREATE INDEX outbox_enrollment ON outbox(enrollment_id) WHERE status = 'pending';
CREATE INDEX outbox_cadence ON outbox(cadence_id, node_id);

CREATE TABLE outcomes (
  key TEXT NOT NULL,
  cadence_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  outcome TEXT NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (key, outcome)
);
CREATE INDEX outcomes_cadence ON outcomes(cadence_id, node_id);

CREATE TABLE audit (
  seq BIGSERIAL PRIMARY KEY,
  at BIGINT NOT NULL,
  cadence_id TEXT,
  enrollment_id TEXT,
  record_id TEXT,
  actor TEXT NOT NULL,
  event TEXT NOT NULL,
  reason TEXT NOT NULL,
  data JSONB
);
CREATE INDEX audit_enrollment ON audit(enrollment_id, seq);
CREATE INDEX audit_record ON audit(record_id, seq);
CREATE INDEX audit_cadence ON audit(cadence_id, seq);

CREATE TABLE counters (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);
