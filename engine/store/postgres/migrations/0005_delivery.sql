-- 0005: delivery as machine state (D5). The enrollment's reason gets a column of its own (reports group
-- on it, instead of reading the JSON state).
ALTER TABLE enrollments ADD COLUMN reason TEXT NOT NULL DEFAULT '';
UPDATE enrollments SET reason = COALESCE(state->>'reason', '');
CREATE INDEX enrollments_cadence_reason ON enrollments(cadence_id, status, reason);
