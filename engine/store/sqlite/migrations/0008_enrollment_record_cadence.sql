-- 0008: nothing to do on SQLite (the number is kept so both stores have the same migrations).
-- PostgreSQL's 0008 makes its unique (record, cadence) index serve lookups by record and drops the
-- index on record_id alone. Here the pair is a table constraint: dropping one means rebuilding the
-- table, and one writer on a local file is not bound by index writes as a shared server is.
SELECT 1;
