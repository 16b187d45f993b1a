-- 0007: the report's latest un-enrollments are their own query (the newest stopped or failed enrollments
-- of a cadence), not a scan of the audit, which any long-lived cadence outgrows. A partial index keeps it
-- a short backward walk whatever the number of active or completed enrollments.
CREATE INDEX enrollments_left ON enrollments(cadence_id, updated_at) WHERE status IN ('stopped', 'failed');
