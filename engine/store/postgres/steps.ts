// The one statement that writes a batch of steps on PostgreSQL, and the JSON row shapes it reads:
// each commit's enrollment (rev-guarded, its timer in its due_at), outbox changes, new outbox rows and
// audit, as the commit says (no rule here); and the transaction around it when capped counters count.
import pg from 'pg';
import { SENT_DROPPED } from '../sent';
import { COLUMN_FIELDS } from '../enrollment-row';
import { packAudit, type Commit, type CounterBump, type PackedAudit } from '../store';

/**
 * What a delivered action keeps: what was sent to whom, not its bodies, the record copy or its columns'
 * ids (engine/store/sent.ts). One `jsonb - text[]` for the top-level fields and one per channel object,
 * not one `#-` per path: each operator rebuilds the whole value, and a chain of thirteen on every
 * verdict was the largest part of the statement's cost to PostgreSQL.
 */
export const SENT_SUMMARY = (() => {
  if (SENT_DROPPED.some((p) => p.length > 2)) throw new Error('SENT_SUMMARY drops fields one or two levels deep');
  const list = (keys: string[]) => `'{${keys.join(',')}}'::text[]`;
  const top = SENT_DROPPED.filter((p) => p.length === 1).map((p) => p[0]);
  const nested = new Map<string, string[]>();
  for (const [parent, key] of SENT_DROPPED.filter((p) => p.length === 2)) nested.set(parent, [...(nested.get(parent) ?? []), key]);
  const objects = [...nested].map(([parent, keys]) =>
    ` || CASE WHEN jsonb_typeof(payload->'${parent}') = 'object' THEN jsonb_build_object('${parent}', (payload->'${parent}') - ${list(keys)}) ELSE '{}'::jsonb END`);
  return `(payload - ${list(top)}${objects.join('')})`;
})();

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
  const steps = JSON.stringify(commits.map((c) => ({ rev: c.expectedRev, state: c.enrollment, set_due: c.timer !== undefined, due: c.timer ?? null })));
  const audit = JSON.stringify(commits.flatMap((c) => packAudit(c.audit).map(auditJson)));
  const changes = JSON.stringify(commits.flatMap((c) => (c.outboxChanges ?? []).map((ch) => ({
    enrollment_id: c.enrollment.id, key: ch.key, op: ch.op, at: c.enrollment.updatedAt, ...(ch.op === 'retry' ? { retry_at: ch.at, error: ch.error } : {}),
  }))));
  const r = await db.query(`WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(rev int, state jsonb, set_due boolean, due bigint)),
    moved AS (
      UPDATE enrollments e SET status = x.state->>'status', reason = x.state->>'reason', state = x.state - $5::text[], rev = e.rev + 1,
        started_at = (x.state->>'startedAt')::bigint, updated_at = (x.state->>'updatedAt')::bigint, due_at = CASE WHEN x.set_due THEN x.due ELSE e.due_at END
      FROM x WHERE x.rev IS NOT NULL AND e.id = x.state->>'id' AND e.rev = x.rev RETURNING e.id),
    fresh AS (
      INSERT INTO enrollments (id, cadence_id, record_id, module, status, reason, rev, state, started_at, updated_at, due_at)
      SELECT x.state->>'id', x.state->>'cadenceId', x.state->>'recordId', x.state->>'module', x.state->>'status', x.state->>'reason', 1, x.state - $5::text[], (x.state->>'startedAt')::bigint, (x.state->>'updatedAt')::bigint, x.due
      FROM x WHERE x.rev IS NULL ON CONFLICT DO NOTHING RETURNING id),
    applied AS (SELECT id FROM moved UNION ALL SELECT id FROM fresh),
    k AS (SELECT * FROM jsonb_to_recordset($4::jsonb) AS k(enrollment_id text, key text, op text, at bigint, retry_at bigint, error text) WHERE k.enrollment_id IN (SELECT id FROM applied)),
    changed AS (
      UPDATE outbox o SET
        status = CASE k.op WHEN 'cancel' THEN 'cancelled' WHEN 'requeue' THEN 'pending' WHEN 'retry' THEN 'pending' ELSE k.op END,
        attempts = CASE k.op WHEN 'requeue' THEN 0 ELSE o.attempts END,
        available_at = CASE k.op WHEN 'requeue' THEN k.at WHEN 'retry' THEN k.retry_at ELSE o.available_at END,
        created_at = CASE k.op WHEN 'requeue' THEN k.at ELSE o.created_at END,
        locked_until = CASE k.op WHEN 'cancel' THEN o.locked_until ELSE 0 END,
        done_at = CASE k.op WHEN 'requeue' THEN NULL WHEN 'cancel' THEN o.done_at WHEN 'retry' THEN o.done_at ELSE k.at END,
        last_error = CASE k.op WHEN 'done' THEN NULL WHEN 'retry' THEN k.error ELSE o.last_error END,
        payload = CASE k.op WHEN 'done' THEN ${SENT_SUMMARY.replace(/payload/g, 'o.payload')} ELSE o.payload END
      FROM k WHERE o.key = k.key AND CASE k.op
        WHEN 'cancel' THEN o.status = 'pending' AND (o.attempts = 0 OR o.locked_until <= k.at)
        WHEN 'requeue' THEN o.status = 'dead'
        WHEN 'done' THEN o.status IN ('pending', 'dead')
        ELSE o.status = 'pending' END),
    queued AS (INSERT INTO outbox ${OUTBOX_COLUMNS} ${outboxRows('$2')} WHERE x.enrollment_id IN (SELECT id FROM applied)),
    logged AS (INSERT INTO audit ${AUDIT_COLUMNS} ${auditRows('$3')} WHERE x.enrollment_id IN (SELECT id FROM applied))
    SELECT id FROM applied`, [steps, outboxJson(commits), audit, changes, COLUMN_FIELDS]);
  const ok = new Set(r.rows.map((row) => row.id as string));
  return commits.map((c) => ok.has(c.enrollment.id));
}

/** A capped counter with the other counters of its window (F13): their sum counts against the cap. */
const sumOf = (n: Map<string, number>, b: CounterBump) => [b.key, ...(b.window ?? [])].reduce((s, k) => s + (n.get(`${b.scope}\u0000${k}`) ?? 0), 0);

/**
 * Steps with capped counters (F12, E9, C5, F13), inside a transaction the caller holds: the counter
 * rows are locked after the steps' enrollments (the order every writer takes, so a batch stepping
 * under row locks never deadlocks with it; `enrollmentsLocked` when the caller holds them already), the steps that fit under every cap are chosen in order,
 * and only those are written and counted.
 */
export async function writeCounted(db: pg.PoolClient, commits: Commit[], enrollmentsLocked = false): Promise<boolean[]> {
  const ids = enrollmentsLocked ? [] : commits.filter((c) => c.expectedRev !== null).map((c) => c.enrollment.id).sort();
  if (ids.length) await db.query('SELECT 1 FROM enrollments WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [ids]);
  const all = commits.flatMap((c) => c.counters).flatMap((b) => [b.key, ...(b.window ?? [])].map((key) => ({ scope: b.scope, key }))); // F13: a window's rows are locked too
  const keys = [...new Map(all.map((b) => [`${b.scope}\u0000${b.key}`, b])).values()]
    .sort((a, b) => (a.scope + a.key < b.scope + b.key ? -1 : 1)); // one lock order for every worker: no deadlocks
  const json = JSON.stringify(keys);
  await db.query('INSERT INTO counters (scope, key, n) SELECT scope, key, 0 FROM jsonb_to_recordset($1::jsonb) AS x(scope text, key text) ON CONFLICT DO NOTHING', [json]);
  const rows = (await db.query(`SELECT c.scope, c.key, c.n FROM counters c JOIN jsonb_to_recordset($1::jsonb) AS x(scope text, key text) ON c.scope = x.scope AND c.key = x.key
    ORDER BY c.scope COLLATE "C", c.key COLLATE "C" FOR UPDATE OF c`, [json])).rows as { scope: string; key: string; n: number }[];
  const n = new Map(rows.map((r) => [`${r.scope}\u0000${r.key}`, r.n]));
  // In order, as one by one: a step fits if every capped counter it bumps is still under its cap.
  const fits = commits.map((c) => {
    if (c.counters.some((b) => b.max !== undefined && sumOf(n, b) >= b.max)) return false;
    for (const b of c.counters) if (!b.checkOnly) n.set(`${b.scope}\u0000${b.key}`, (n.get(`${b.scope}\u0000${b.key}`) ?? 0) + 1);
    return true;
  });
  const chosen = commits.filter((_, i) => fits[i]);
  const applied = new Set<Commit>();
  (await writeSteps(db, chosen)).forEach((ok, i) => ok && applied.add(chosen[i]));
  // Counted for the steps that were written (a step another worker moved first bumps nothing).
  const bumps = [...applied].flatMap((c) => c.counters.filter((b) => !b.checkOnly).map((b) => ({ scope: b.scope, key: b.key })));
  if (bumps.length) {
    await db.query(`UPDATE counters c SET n = c.n + d.k FROM (SELECT scope, key, COUNT(*)::int AS k FROM jsonb_to_recordset($1::jsonb) AS x(scope text, key text) GROUP BY 1, 2) d
      WHERE c.scope = d.scope AND c.key = d.key`, [JSON.stringify(bumps)]);
  }
  return commits.map((c) => applied.has(c));
}
