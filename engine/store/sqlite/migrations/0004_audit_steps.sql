-- 0004: one audit row per step. The entries after a step's first ride along in `more` (a JSON array of
-- {event, reason, data}); readers unpack them in order. Rows written before have no `more`.
ALTER TABLE audit ADD COLUMN more TEXT;
