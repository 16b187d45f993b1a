-- 0006: an enrollment's timer lives in its own row (issue 15). A step writes one row where it wrote
-- three (claim the timer, update the enrollment, re-arm or drop the timer), and a batch is claimed by
-- the row locks of the transaction that steps it, so a crash frees it at once. The partial index holds
-- only enrollments that wait for a time: a claim costs O(due) however many wait. Timer rows stay for
-- the cadence's own timers (U4's un-enroll date, E7's re-check), a handful per cadence.
ALTER TABLE enrollments ADD COLUMN due_at BIGINT;
UPDATE enrollments e SET due_at = t.due_at FROM timers t WHERE t.id = 'e:' || e.id;
DELETE FROM timers WHERE kind = 'enrollment';
CREATE INDEX enrollments_due ON enrollments(due_at, id) WHERE due_at IS NOT NULL;
-- (cadence_id, status) is a prefix of enrollments_cadence_reason (0005): one index fewer to write per step.
DROP INDEX enrollments_cadence;
