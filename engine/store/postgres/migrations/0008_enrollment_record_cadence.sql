-- 0008: one index where there were two. An enrollment is unique per (cadence, record), and enrollments
-- are looked up by record (a record changed, a reply matched by sender) and by both. With the record
-- first, the unique index serves both lookups, so the index on record_id alone goes. Every step's update
-- of an enrollment changes its due_at (not HOT), so it writes every index of the table: one fewer is one
-- fewer index entry per step, and some 60 bytes less per enrollment. (SQLite keeps its table constraint:
-- dropping one there means rebuilding the table, and its one writer is not bound by index writes.)
ALTER TABLE enrollments DROP CONSTRAINT enrollments_cadence_id_record_id_key;
CREATE UNIQUE INDEX enrollments_record_cadence ON enrollments (record_id, cadence_id);
DROP INDEX enrollments_record;
