-- 0005: delivery as machine state (D5). The enrollment's reason gets a column of its own (reports group
-- on it, instead of reading the JSON state); actions queued before D5 counted as executed when queued,
-- so their still-pending rows stay what they were.
ALTER TABLE enrollments ADD COLUMN reason TEXT NOT NULL DEFAULT '';
UPDATE enrollments SET reason = COALESCE(json_extract(state, '$.reason'), '');
CREATE INDEX enrollments_cadence_reason ON enrollments(cadence_id, status, reason);
