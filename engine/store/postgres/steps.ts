// The one statement that writes a batch of steps on PostgreSQL, and the JSON row shapes it reads:
// each commit's enrollment (rev-guarded), timer, outbox changes, new outbox rows and audit, as the
// commit says (no rule here).
import pg from 'pg';
import { packAudit, type Commit, type PackedAudit } from '../store';

/** What a delivered action keeps: what was sent to whom, not its bodies or the record copy (SQLite's twin). */
export const SENT_SUMMARY = "payload - 'record' #- '{email,html}' #- '{email,text}' #- '{email,headers}'";

// Rows arrive as one JSON array per statement (jsonb_to_recordset): a single parameter whatever the batch size.
const OUTBOX_COLUMNS = '(key, enrollment_id, cadence_id, node_id, record_id, channel, payload, status, attempts, available_at, locked_until, created_at)';
const outboxRows = (param: string) => `SELECT key, enrollment_id, cadence_id, node_id, record_id, channel, payload, 'pending', attempts, available_at, locked_until, created_at
  FROM jsonb_to_recordset(${param}::jsonb) AS x(key text, enrollment_id text, cadence_id text, node_id text, record_id text, channel text, payload jsonb, attempts int, available_at bigint, locked_until bigint, created_at bigint)`;
const outboxJson = (commits: Commit[]) => JSON.stringify(commits.flatMap((c) => c.outbox.map((o) => ({
  key: o.key, enrollment_id: o.enrollmentId, cadence_id: o.cadenceId, node_id: o.nodeId, record_id: o.recordId, channel: o.channel, payload: o.payload,
  attempts: c.handOffUntil ? 1 : 0, available_at: o.availableAt, locked_until: c.handOffUntil ?? 0, created_at: o.createdAt,
}))));
export const AUDIT_COLUMNS = '(at, cadence_id, enrollment_id, record_id, actor, event, reason, data, more)';
export const auditRows = (param: string) => `SELECT at, cadence_id, enrollment_id, record_id, actor, event, reason, data, more FROM jsonb_to_recordset(${param}::jsonb)
  AS x(at bigint, cadence_id text, enrollment_id text, record_id text, actor text, event text, reason text, data jsonb, more jsonb)`;
export const auditJson = (a: PackedAudit) => ({ at: a.at, cadence_id: a.cadenceId, enrollment_id: a.enrollmentId, record_id: a.recordId, actor: a.actor, event: a.event, reason: a.reason, data: a.data ?? null, more: a.more });

export async function writeSteps(db: pg.Pool | pg.PoolClient, commits: Commit[]): Promise<boolean[]> {
  if (!commits.length) return [];
  const steps = JSON.stringify(commits.map((c) => ({ rev: c.expectedRev, state: c.enrollment })));
  const audit = JSON.stringify(commits.flatMap((c) => packAudit(c.audit).map(auditJson)));
  const timers = JSON.stringify(commits.filter((c) => c.timer !== undefined).map((c) => ({ id: c.enrollment.id, cadence_id: c.enrollment.cadenceId, at: c.timer })));
  const changes = JSON.stringify(commits.flatMap((c) => (c.outboxChanges ?? []).map((ch) => ({ enrollment_id: c.enrollment.id, key: ch.key, op: ch.op, at: c.enrollment.updatedAt }))));
  const r = await db.query(`WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(rev int, state jsonb)),
    moved AS (
      UPDATE enrollments e SET status = x.state->>'status', reason = x.state->>'reason', state = x.state, rev = e.rev + 1,
        started_at = (x.state->>'startedAt')::bigint, updated_at = (x.state->>'updatedAt')::bigint
      FROM x WHERE x.rev IS NOT NULL AND e.id = x.state->>'id' AND e.rev = x.rev RETURNING e.id),
    fresh AS (
      INSERT INTO enrollments (id, cadence_id, record_id, module, status, reason, rev, state, started_at, updated_at)
      SELECT x.state->>'id', x.state->>'cadenceId', x.state->>'recordId', x.state->>'module', x.state->>'status', x.state->>'reason', 1, x.state, (x.state->>'startedAt')::bigint, (x.state->>'updatedAt')::bigint
      FROM x WHERE x.rev IS NULL ON CONFLICT DO NOTHING RETURNING id),
    applied AS (SELECT id FROM moved UNION ALL SELECT id FROM fresh),
    t AS (SELECT * FROM jsonb_to_recordset($4::jsonb) AS t(id text, cadence_id text, at bigint) WHERE t.id IN (SELECT id FROM applied)),
    armed AS (
      INSERT INTO timers (id, kind, cadence_id, due_at, priority, locked_until)
      SELECT 'e:' || id, 'enrollment', cadence_id, at, 1, 0 FROM t WHERE at IS NOT NULL
      ON CONFLICT (id) DO UPDATE SET due_at = EXCLUDED.due_at, priority = EXCLUDED.priority, locked_until = 0),
    disarmed AS (DELETE FROM timers WHERE id IN (SELECT 'e:' || id FROM t WHERE at IS NULL)),
    k AS (SELECT * FROM jsonb_to_recordset($5::jsonb) AS k(enrollment_id text, key text, op text, at bigint) WHERE k.enrollment_id IN (SELECT id FROM applied)),
    changed AS (
      UPDATE outbox o SET
        status = CASE k.op WHEN 'cancel' THEN 'cancelled' WHEN 'requeue' THEN 'pending' ELSE k.op END,
        attempts = CASE k.op WHEN 'requeue' THEN 0 ELSE o.attempts END,
        available_at = CASE k.op WHEN 'requeue' THEN k.at ELSE o.available_at END,
        created_at = CASE k.op WHEN 'requeue' THEN k.at ELSE o.created_at END,
        locked_until = CASE k.op WHEN 'cancel' THEN o.locked_until ELSE 0 END,
        done_at = CASE k.op WHEN 'requeue' THEN NULL WHEN 'cancel' THEN o.done_at ELSE k.at END,
        last_error = CASE k.op WHEN 'done' THEN NULL ELSE o.last_error END,
        payload = CASE k.op WHEN 'done' THEN ${SENT_SUMMARY.replace(/payload/g, 'o.payload')} ELSE o.payload END
      FROM k WHERE o.key = k.key AND CASE k.op
        WHEN 'cancel' THEN o.status = 'pending' AND o.attempts = 0
        WHEN 'requeue' THEN o.status = 'dead'
        WHEN 'done' THEN o.status IN ('pending', 'dead')
        ELSE o.status = 'pending' END),
    queued AS (INSERT INTO outbox ${OUTBOX_COLUMNS} ${outboxRows('$2')} WHERE x.enrollment_id IN (SELECT id FROM applied)),
    logged AS (INSERT INTO audit ${AUDIT_COLUMNS} ${auditRows('$3')} WHERE x.enrollment_id IN (SELECT id FROM applied))
    SELECT id FROM applied`, [steps, outboxJson(commits), audit, timers, changes]);
  const ok = new Set(r.rows.map((row) => row.id as string));
  return commits.map((c) => ok.has(c.enrollment.id));
}
