// The runtime: everything with I/O around the pure machine. Each change is read -> transition ->
// one store commit (state + timer + outbox + audit) -> dispatch from the outbox. A commit that finds
// the enrollment changed underneath it is retried from a fresh read, so several workers may share one
// store without ever running a follow-up twice (D2).
import { createHash, randomBytes } from 'node:crypto';
import { Criteria, CriteriaError } from '../criteria/criteria';
import { actionKey, capKey, transition, zoneOf } from '../machine/machine';
import type { ActionRef, Context, CriteriaResults, Effect, Enrollment, MachineEvent, RecordSnapshot } from '../machine/types';
import { CadenzaError } from '../model/errors';
import { classifyReply, OUTCOMES, type InboundMessage } from '../model/outcomes';
import type { CadenceDefinition, FollowUpNode, Template } from '../model/types';
import { assertDefinition, canonicalJson, findNode } from '../model/validate';
import { keyFromMessageIds, render, verifyToken, type ActivityPayload, type EmailPayload, type WhatsAppPayload } from '../render/render';
import type { AuditRow, CadenceRow, Commit, CounterBump, OutboxChange, OutboxRow, Store, StoredEnrollment, TimerRow } from '../store/store';
import { addDelay, bucketStart, nextBucket, parseInstant } from '../time/time';
import { afterFailure, DEFAULT_DELIVERY, type DeliveryPolicy } from '../machine/delivery';
import { CannotRunError, Dispatcher, type HandOffResult } from './dispatcher';
import { engineKey, headerSafeKey, recordIdProblem } from './keys';
import { systemClock, type Clock } from './clock';
import { moduleLimits, type LimitSettings } from './limits';
import { actorId, AUTOMATION, requirePermission, type Actor, type Permission } from './permissions';

const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

export interface RuntimeOptions {
  store: Store;
  clock?: Clock;
  /** Default zone for cadences and records that name none. */
  timezone?: string;
  defaultSender?: string;
  /** Signs unsubscribe and tracking links. Without one, a random secret is generated once and kept in the store. */
  secret?: string;
  /** Public base URL for links in emails. */
  baseUrl?: string;
  templates?: Record<string, Template>;
  whatsappTemplates?: string[];
  users?: Record<string, { name?: string; email?: string; signature?: string }>;
  limits?: LimitSettings;
  /** D6: backoff (first wait, longest wait) and how long a failing performer's actions are held before the step fails. */
  retry?: { baseMs?: number; maxMs?: number; holdMs?: number; jitter?: number };
  /** Hand-offs in flight at once (default 16). */
  concurrency?: number;
  /** A hand-off not confirmed within this time counts as a transient failure (default 30 s). */
  handOffTimeoutMs?: number;
  /** How long stop() waits for hand-offs in flight (default 5 s); the rest are handed over again when their lease ends. */
  stopGraceMs?: number;
  batchSize?: number;
  leaseMs?: number;
  /** How often time-dependent views and criteria are re-evaluated (E7). */
  recheckMs?: number;
  maxRecordBytes?: number;
}

/** What a host receives for a due follow-up: the action, the record, and the rendered content. */
export interface DispatchedAction extends ActionRef {
  /** The key for the host's side (D2): ASCII and safe in an HTTP header whatever the record id. */
  idempotencyKey: string;
  module: string;
  attempt: number;
  record: Record<string, unknown>;
  email?: EmailPayload;
  activity?: ActivityPayload;
  whatsapp?: WhatsAppPayload;
}

/**
 * Performs one action. Resolving means delivered (D5); throwing (or not settling within the hand-off
 * time limit) is a transient failure retried under the same key, unless the error is a CannotRunError
 * or carries `permanent: true` (D6).
 */
export type DispatchHandler = (action: DispatchedAction) => Promise<void> | void;
/** Hands a whole claimed batch to the host at once (one n8n execution for many due items). */
export type BatchDispatchHandler = (actions: DispatchedAction[]) => Promise<void> | void;

/** Limits a scheduler pass to the cadences a host serves. */
export interface TickScope {
  cadences?: readonly string[];
}

export { CannotRunError };

export interface EnrollAnswer {
  recordId: string;
  status: 'enrolled' | 'skipped';
  reason?: string;
  rule?: string;
  enrollmentId?: string;
  startAt?: number;
}

export interface RuntimeEvent {
  type: 'changed' | 'left' | 'dispatched' | 'dispatchFailed' | 'error';
  enrollment?: Enrollment;
  nodeId?: string;
  key?: string;
  error?: string;
}

export interface DeployResult {
  action: 'created' | 'published' | 'activated' | 'unchanged';
  version: number;
  stopped: number;
  enrolled: number;
}

/** What one record of `upsertRecords` came to: the cadences it entered or was refused by, or why it was refused (D4). */
export type UpsertAnswer = { recordId: string; enrollments: EnrollAnswer[] } | { recordId: string; error: CadenzaError };

const ALREADY_ENROLLED = (recordId: string): EnrollAnswer => ({ recordId, status: 'skipped', reason: 'already enrolled; re-enroll to resume or restart', rule: 'E1' });

/** Splits a list into consecutive runs without a repeated key, so a batch keeps one-by-one order semantics. */
function uniqueRuns<T>(items: readonly T[], key: (x: T) => string): T[][] {
  const runs: T[][] = [];
  let seen = new Set<string>();
  for (const x of items) {
    if (!runs.length || seen.has(key(x))) (runs.push([]), (seen = new Set()));
    runs[runs.length - 1].push(x);
    seen.add(key(x));
  }
  return runs;
}

interface StepResult {
  state: Enrollment | null;
  effects: Effect[];
}

const MAX_CONFLICTS = 20;

export class Runtime {
  readonly store: Store;
  readonly clock: Clock;
  readonly criteria = new Criteria();
  private readonly opts: Required<Pick<RuntimeOptions, 'timezone' | 'defaultSender' | 'baseUrl' | 'batchSize' | 'leaseMs' | 'recheckMs' | 'maxRecordBytes'>> & RuntimeOptions & { secret: string };
  private readonly versions = new Map<string, CadenceDefinition>();
  private readonly templateIds: ReadonlySet<string>;
  private handler: DispatchHandler | null = null;
  private batchHandler: BatchDispatchHandler | null = null;
  private readonly listeners = new Set<(e: RuntimeEvent) => void>();
  private loop: NodeJS.Timeout | null = null;
  private ticking: Promise<unknown> | null = null;
  private readonly delivery: DeliveryPolicy;
  private readonly dispatcher: Dispatcher;

  constructor(options: RuntimeOptions) {
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.opts = {
      timezone: 'UTC', defaultSender: 'cadenza@localhost', baseUrl: 'http://localhost:1880', batchSize: 200,
      leaseMs: 60_000, recheckMs: 3_600_000, maxRecordBytes: 256 * 1024, ...options, secret: options.secret ?? '',
    };
    this.templateIds = new Set(Object.keys(options.templates ?? {}));
    this.delivery = { ...DEFAULT_DELIVERY, ...options.retry };
    // A hand-off must be able to time out well inside its lease, or another worker could take it meanwhile.
    const timeoutMs = Math.min(options.handOffTimeoutMs ?? 30_000, Math.floor(this.opts.leaseMs / 2));
    this.dispatcher = new Dispatcher({ concurrency: Math.max(1, options.concurrency ?? 16), timeoutMs }, (rows) => this.perform(rows), (r) => this.reported(r));
  }

  async init(): Promise<this> {
    await this.store.migrate();
    // Links must survive restarts: without a configured secret, the store keeps one.
    if (!this.opts.secret) this.opts.secret = await this.store.meta('link-secret', randomBytes(32).toString('hex'));
    return this;
  }

  /** The host's performer of due actions. It gets an idempotency key; throwing retries with backoff. */
  onDispatch(handler: DispatchHandler): void {
    this.handler = handler;
  }

  /** Like onDispatch, but the host receives each claimed batch whole; all of it is acknowledged or retried together. */
  onDispatchBatch(handler: BatchDispatchHandler): void {
    this.batchHandler = handler;
  }

  subscribe(fn: (e: RuntimeEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: RuntimeEvent) {
    for (const fn of this.listeners) fn(e);
  }

  // Cadences: create, edit, clone, publish, deactivate (C1-C3, V1-V3) ---------------------------------

  async createCadence(input: unknown, actor: Actor): Promise<CadenceRow> {
    requirePermission(actor, 'manage');
    const def = assertDefinition(input, { whatsappTemplates: this.opts.whatsappTemplates });
    if (await this.store.getCadence(def.id)) throw new CadenzaError('exists', 'C2', `cadence "${def.id}" already exists: edit its draft instead`);
    const created = (await this.store.listCadences(def.module)).length;
    const limit = moduleLimits(this.opts.limits).created;
    if (created >= limit) throw new CadenzaError('limit', 'C3', `module ${def.module} already has ${created} cadences (limit ${limit})`);
    const now = this.clock.now();
    const row: CadenceRow = { id: def.id, module: def.module, name: def.name, status: 'draft', draft: def, activeVersion: null, createdAt: now, updatedAt: now };
    await this.store.putCadence(row);
    await this.audit({ cadenceId: def.id, actor, event: 'created', reason: `cadence created in ${def.module}` });
    return row;
  }

  /** C2: edits the draft; the active version keeps running until the draft is published. */
  async updateDraft(id: string, input: unknown, actor: Actor): Promise<CadenceRow> {
    requirePermission(actor, 'manage');
    const row = await this.requireCadence(id);
    const def = assertDefinition(input, { whatsappTemplates: this.opts.whatsappTemplates });
    if (def.id !== id) throw new CadenzaError('invalid_definition', 'D4', `definition id "${def.id}" does not match cadence "${id}"`);
    if (def.module !== row.module) throw new CadenzaError('invalid_definition', 'C1', `a cadence belongs to one module: ${row.module}, not ${def.module}`);
    const next = { ...row, name: def.name, draft: def, updatedAt: this.clock.now() };
    await this.store.putCadence(next);
    await this.audit({ cadenceId: id, actor, event: 'edited', reason: 'draft saved' });
    return next;
  }

  /** C1: clone within the module only. */
  async cloneCadence(id: string, newId: string, actor: Actor, module?: string): Promise<CadenceRow> {
    const row = await this.requireCadence(id);
    if (module !== undefined && module !== row.module) throw new CadenzaError('cross_module', 'C1', `a cadence of ${row.module} cannot be cloned into ${module}`);
    const source = row.draft ?? (row.activeVersion ? await this.definition(id, row.activeVersion) : undefined);
    return this.createCadence({ ...source, id: newId, name: `${source?.name ?? id} (copy)` }, actor);
  }

  /** E2: how many known records the draft's view would enroll now ("review your custom view count"). */
  async previewEnrollment(id: string, actor: Actor = AUTOMATION): Promise<{ matching: number; skippedByExit: number; alreadyEnrolled: number }> {
    requirePermission(actor, 'view', 'P2');
    const row = await this.requireCadence(id);
    const def = row.draft ?? (await this.definition(id, row.activeVersion!));
    const out = { matching: 0, skippedByExit: 0, alreadyEnrolled: 0 };
    if (def.enrollment.mode !== 'view') return out;
    await this.eachRecord(def.module, async (rec) => {
      const c = await this.evaluate(def, rec);
      if (!c.view) return;
      if (await this.store.findEnrollment(id, rec.id)) out.alreadyEnrolled++;
      else if (c.exit) out.skippedByExit++;
      else out.matching++;
    });
    return out;
  }

  /** C2, V1, V2: the draft becomes a new immutable version; enrollments waiting on an edited follow-up stop. */
  async publish(id: string, actor: Actor): Promise<{ version: number; stopped: number; enrolled: number }> {
    requirePermission(actor, 'manage');
    const row = await this.requireCadence(id);
    if (!row.draft) throw new CadenzaError('no_draft', 'C2', `cadence "${id}" has no draft to publish`);
    const def = assertDefinition(row.draft, { whatsappTemplates: this.opts.whatsappTemplates });
    if (row.status !== 'active') await this.checkActiveLimit(row.module);
    const version = (row.activeVersion ?? 0) + 1;
    const now = this.clock.now();
    if (!(await this.store.addVersion(id, version, def, now, actorId(actor)))) {
      throw new CadenzaError('conflict', 'V1', `version ${version} of cadence "${id}" was just published by another process`);
    }
    await this.store.putCadence({ ...row, status: 'active', activeVersion: version, draft: null, updatedAt: now });
    await this.audit({ cadenceId: id, actor, event: 'published', reason: `version ${version} published` });
    let stopped = 0;
    if (row.activeVersion) {
      await this.eachEnrollment(id, 'active', async (e) => {
        const r = await this.apply(e.enrollment.id, { type: 'published', next: def, version, by: actorId(actor) }, actor);
        if (r.state?.status === 'stopped') stopped++;
      });
    }
    // Publishing an inactive cadence activates it: what was halted stays halted, never run later (V3).
    if (row.status === 'inactive') await this.eachEnrollment(id, 'active', (e) => this.apply(e.enrollment.id, { type: 'activated', by: actorId(actor) }, actor));
    await this.scheduleCadenceTimers(def);
    const enrolled = await this.enrollMatching(def);
    return { version, stopped, enrolled };
  }

  /** V3: halts every scheduled action of the cadence; un-enrollment still happens while inactive (U7). */
  async deactivate(id: string, actor: Actor): Promise<void> {
    requirePermission(actor, 'manage');
    const row = await this.requireCadence(id);
    if (row.status !== 'active') throw new CadenzaError('not_active', 'V3', `cadence "${id}" is ${row.status}`);
    await this.store.putCadence({ ...row, status: 'inactive', updatedAt: this.clock.now() });
    await this.store.deleteTimer(`e7:${id}`);
    await this.audit({ cadenceId: id, actor, event: 'deactivated', reason: 'cadence deactivated (V3)' });
    await this.eachEnrollment(id, 'active', (e) => this.apply(e.enrollment.id, { type: 'deactivated', by: actorId(actor) }, actor));
  }

  /** V3: halted actions never run later; newly matching records enroll again. */
  async activate(id: string, actor: Actor): Promise<{ enrolled: number }> {
    requirePermission(actor, 'manage');
    const row = await this.requireCadence(id);
    if (row.status === 'active') return { enrolled: 0 };
    if (!row.activeVersion) throw new CadenzaError('no_version', 'C2', `cadence "${id}" was never published`);
    await this.checkActiveLimit(row.module);
    await this.store.putCadence({ ...row, status: 'active', updatedAt: this.clock.now() });
    await this.audit({ cadenceId: id, actor, event: 'activated', reason: 'cadence activated (V3)' });
    await this.eachEnrollment(id, 'active', (e) => this.apply(e.enrollment.id, { type: 'activated', by: actorId(actor) }, actor));
    const def = await this.definition(id, row.activeVersion);
    await this.scheduleCadenceTimers(def);
    return { enrolled: await this.enrollMatching(def) };
  }

  /**
   * What a host does on deploy/activation: make the store match a compiled definition. New -> created
   * and published; changed -> a new version (V1, V2); unchanged but inactive -> activated; else nothing.
   */
  async deploy(input: unknown, actor: Actor): Promise<DeployResult> {
    const def = assertDefinition(input, { whatsappTemplates: this.opts.whatsappTemplates });
    // Several instances deploying the same flows at once (a cluster booting) take turns: the first
    // publishes, the others then find their definition published (unchanged).
    return this.store.exclusive(`deploy:${def.id}`, () => this.deployOnce(def, actor));
  }

  private async deployOnce(def: CadenceDefinition, actor: Actor): Promise<DeployResult> {
    const row = await this.store.getCadence(def.id);
    if (!row) {
      await this.createCadence(def, actor);
      return { action: 'created', ...(await this.publish(def.id, actor)) };
    }
    const current = row.activeVersion ? await this.definition(def.id, row.activeVersion) : null;
    if (current && canonicalJson(current) === canonicalJson(def)) {
      if (row.status === 'active') return { action: 'unchanged', version: row.activeVersion!, stopped: 0, enrolled: 0 };
      const { enrolled } = await this.activate(def.id, actor);
      return { action: 'activated', version: row.activeVersion!, stopped: 0, enrolled };
    }
    await this.updateDraft(def.id, def, actor);
    return { action: 'published', ...(await this.publish(def.id, actor)) };
  }

  /** Active enrollments of a cadence, for host status displays. */
  async countActive(cadenceId: string): Promise<number> {
    const stats = await this.store.cadenceStats(cadenceId);
    return stats.byStatus.filter((r) => r.status === 'active').reduce((a, r) => a + r.n, 0);
  }

  // Records (E2, E7, E8, F8) ---------------------------------------------------------------------------

  /** Saves the latest snapshot of a record and reacts: un-enroll on criteria (U2, U3), enroll into views (E2). */
  async upsertRecord(module: string, input: unknown, actor: Actor = AUTOMATION): Promise<EnrollAnswer[]> {
    const [answer] = await this.upsertRecords(module, [input], actor);
    if ('error' in answer) throw answer.error;
    return answer.enrollments;
  }

  /**
   * Many records at once (an import, an n8n batch, a page of E7 re-evaluation): one read and one write
   * of the snapshots, one read of their enrollments, and per view cadence one set-based commit of the
   * enrollments they start. Each record answers on its own; a bad one (D4) is refused, the rest go on.
   */
  async upsertRecords(module: string, inputs: readonly unknown[], actor: Actor = AUTOMATION): Promise<UpsertAnswer[]> {
    requirePermission(actor, 'enroll'); // a saved record may enter view cadences
    if (!Array.isArray(inputs)) throw new CadenzaError('invalid_records', 'D4', 'records must be a list');
    const answers: UpsertAnswer[] = new Array(inputs.length);
    const valid: { i: number; rec: RecordSnapshot }[] = [];
    inputs.forEach((input, i) => {
      try {
        valid.push({ i, rec: this.checkRecord(module, input) });
      } catch (e) {
        if (!(e instanceof CadenzaError)) throw e;
        answers[i] = { recordId: recordIdOf(input), error: e };
      }
    });
    for (const run of uniqueRuns(valid, (v) => v.rec.id)) {
      const snapshots = await this.saveRecords(run.map((v) => v.rec));
      const results = await this.reactMany(snapshots, actor);
      run.forEach((v, k) => (answers[v.i] = { recordId: v.rec.id, enrollments: results[k] }));
    }
    return answers;
  }

  /** Writes snapshots, keeping an unsubscribe (F8) the caller's copy of the record may not know about. */
  private async saveRecords(recs: RecordSnapshot[]): Promise<RecordSnapshot[]> {
    if (!recs.length) return [];
    const prev = new Map((await this.store.getRecords(recs.map((r) => ({ module: r.module, id: r.id })))).map((r) => [r.id, r]));
    const snapshots = recs.map((r) => ({ ...r, unsubscribed: r.unsubscribed || !!prev.get(r.id)?.unsubscribed }));
    await this.store.putRecords(snapshots, this.clock.now());
    return snapshots;
  }

  /** F8: no more emails from any cadence; calls and tasks continue. */
  async unsubscribe(module: string, id: string, actor: Actor = AUTOMATION): Promise<void> {
    requirePermission(actor, 'unenroll');
    const rec = await this.requireRecord(module, id);
    await this.store.putRecords([{ ...rec, unsubscribed: true }], this.clock.now());
    await this.audit({ recordId: id, actor, event: 'unsubscribed', reason: 'record unsubscribed from emails (F8)' });
  }

  /** E8: a converted lead leaves all its cadences. */
  async convertRecord(module: string, id: string, actor: Actor = AUTOMATION): Promise<number> {
    requirePermission(actor, 'unenroll');
    await this.requireRecord(module, id);
    let n = 0;
    for (const e of await this.store.listEnrollments({ recordId: id, status: 'active' })) {
      if (e.enrollment.module !== module) continue;
      await this.apply(e.enrollment.id, { type: 'converted' }, actor);
      n++;
    }
    return n;
  }

  /** A batch of saved records of one module: their enrollments re-check (U2, U3), view cadences enroll (E2). */
  private async reactMany(recs: RecordSnapshot[], actor: Actor): Promise<EnrollAnswer[][]> {
    if (!recs.length) return [];
    const module = recs[0].module;
    const mine = new Map<string, StoredEnrollment[]>();
    for (const e of await this.store.enrollmentsOfRecords(recs.map((r) => r.id))) {
      if (e.enrollment.module !== module) continue;
      mine.set(e.enrollment.recordId, [...(mine.get(e.enrollment.recordId) ?? []), e]);
    }
    await this.recordsChanged(recs, mine, actor);
    const answers = recs.map((): EnrollAnswer[] => []);
    for (const c of await this.store.listCadences(module)) {
      if (c.status !== 'active' || !c.activeVersion) continue;
      const def = await this.definition(c.id, c.activeVersion);
      if (def.enrollment.mode !== 'view') continue;
      const matching: number[] = [];
      const known = new Map<string, CriteriaResults>();
      for (let k = 0; k < recs.length; k++) {
        // E6: any enrollment, even a stopped one, blocks automatic enrollment; only a manual re-enroll brings it back.
        if ((mine.get(recs[k].id) ?? []).some((e) => e.enrollment.cadenceId === c.id)) continue;
        const criteria = await this.evaluate(def, recs[k]);
        if (criteria.view) (matching.push(k), known.set(recs[k].id, criteria));
      }
      const got = await this.enrollMany(def, c.activeVersion, matching.map((k) => recs[k]), AUTOMATION, known);
      got.forEach((a, j) => answers[matching[j]].push(a));
    }
    return answers;
  }

  /**
   * U2/U3 for a batch: each active enrollment of the changed records re-checks its criteria in memory
   * (their state and the new snapshots are at hand); what changes commits as one batch, and a step
   * another worker moved first is applied again one by one.
   */
  private async recordsChanged(recs: RecordSnapshot[], mine: Map<string, StoredEnrollment[]>, actor: Actor): Promise<void> {
    const steps: { cur: StoredEnrollment; next: Enrollment; effects: Effect[]; commit: Commit }[] = [];
    for (const rec of recs) {
      for (const cur of mine.get(rec.id) ?? []) {
        const e = cur.enrollment;
        if (e.status !== 'active') continue;
        const def = await this.definition(e.cadenceId, e.version);
        const ctx = await this.context(def, rec, await this.evaluate(def, rec), e);
        const { next, effects } = transition(e, { type: 'recordChanged' }, ctx);
        if (!next || (next === e && effects.every((f) => f.type === 'reject'))) continue;
        steps.push({ cur, next, effects, commit: this.buildCommit(cur, next, effects, def, rec, actorId(actor), ctx, []) });
      }
    }
    const applied = steps.length ? await this.store.commitMany(steps.map((x) => x.commit)) : [];
    for (const [k, x] of steps.entries()) {
      if (applied[k]) this.committed(x.next, x.effects);
      else await this.apply(x.cur.enrollment.id, { type: 'recordChanged' }, actor);
    }
  }

  // Enrollment (E1, E3, E9, R1-R5, U5) -------------------------------------------------------------------

  /** E1: one record or many; each gets an answer. Records may be given whole (they are saved first) or by id. */
  async enroll(cadenceId: string, records: readonly unknown[], actor: Actor): Promise<EnrollAnswer[]> {
    requirePermission(actor, 'enroll');
    const row = await this.requireCadence(cadenceId);
    if (row.status !== 'active' || !row.activeVersion) throw new CadenzaError('not_active', 'E1', `cadence "${cadenceId}" is not active: publish it first`);
    if (!Array.isArray(records)) throw new CadenzaError('invalid_records', 'D4', 'records must be a list');
    const def = await this.definition(cadenceId, row.activeVersion);
    const answers: EnrollAnswer[] = new Array(records.length);
    const valid: { i: number; id: string; rec?: RecordSnapshot }[] = [];
    records.forEach((item, i) => {
      try {
        if (typeof item === 'string') valid.push({ i, id: item });
        else {
          const rec = this.checkRecord(def.module, item);
          valid.push({ i, id: rec.id, rec });
        }
      } catch (e) {
        if (!(e instanceof CadenzaError)) throw e;
        answers[i] = { recordId: recordIdOf(item), status: 'skipped', reason: e.message, rule: e.rule ?? 'D4' };
      }
    });
    for (const run of uniqueRuns(valid, (v) => v.id)) {
      const saved = new Map((await this.saveRecords(run.flatMap((v) => (v.rec ? [v.rec] : [])))).map((r) => [r.id, r]));
      const byId = run.filter((v) => !v.rec);
      const known = new Map((await this.store.getRecords(byId.map((v) => ({ module: def.module, id: v.id })))).map((r) => [r.id, r]));
      const found: { i: number; rec: RecordSnapshot }[] = [];
      for (const v of run) {
        const rec = saved.get(v.id) ?? known.get(v.id);
        if (rec) found.push({ i: v.i, rec });
        else answers[v.i] = { recordId: v.id, status: 'skipped', reason: `unknown ${def.module} record`, rule: 'D4' };
      }
      const got = await this.enrollMany(def, row.activeVersion, found.map((f) => f.rec), actorId(actor));
      found.forEach((f, k) => (answers[f.i] = got[k]));
    }
    return answers;
  }

  /**
   * Enrolls distinct records into one cadence: one read of their enrollments, every transition in
   * memory, one set-based commit. Paced cadences (E9) and steps that bump capped counters go one by
   * one, since a cap refuses steps individually.
   */
  private async enrollMany(def: CadenceDefinition, version: number, recs: RecordSnapshot[], by: string, known?: Map<string, CriteriaResults>): Promise<EnrollAnswer[]> {
    if (!recs.length) return [];
    const exists = new Set((await this.store.getEnrollments(recs.map((r) => `${def.id}:${r.id}`))).map((e) => e.enrollment.id));
    const answers = new Map<string, EnrollAnswer>();
    const steps: { rec: RecordSnapshot; next: Enrollment; effects: Effect[]; commit: Commit }[] = [];
    const pacer = this.pacer(def);
    for (const rec of recs) {
      const id = `${def.id}:${rec.id}`;
      if (exists.has(id)) {
        answers.set(rec.id, ALREADY_ENROLLED(rec.id));
        continue;
      }
      const criteria = known?.get(rec.id) ?? (await this.evaluate(def, rec));
      const ctx = await this.context(def, rec, criteria, null);
      const slot = await pacer.take();
      const { next, effects } = transition(null, { type: 'enroll', id, version, by, startAt: slot.startAt }, ctx);
      const rejected = effects.find((f) => f.type === 'reject');
      if (!next || rejected) {
        pacer.giveBack(slot);
        answers.set(rec.id, { recordId: rec.id, status: 'skipped', reason: rejected?.type === 'reject' ? rejected.reason : 'refused', rule: rejected?.type === 'reject' ? rejected.rule : 'E1' });
      } else steps.push({ rec, next, effects, commit: this.buildCommit(null, next, effects, def, rec, by, ctx, slot.counters) });
    }
    const applied = steps.length ? await this.store.commitMany(steps.map((x) => x.commit)) : [];
    for (const [k, x] of steps.entries()) {
      if (applied[k]) {
        this.committed(x.next, x.effects);
        answers.set(x.rec.id, { recordId: x.rec.id, status: 'enrolled', enrollmentId: x.next.id, startAt: x.next.startedAt });
      } else if (x.commit.counters.length) {
        answers.set(x.rec.id, await this.enrollOne(def, version, x.rec, by, known?.get(x.rec.id))); // a cap filled meanwhile: pace it again
      } else answers.set(x.rec.id, ALREADY_ENROLLED(x.rec.id)); // another worker enrolled it first
    }
    return recs.map((r) => answers.get(r.id)!);
  }

  /**
   * E9 for a batch: hands out start times bucket by bucket, reading each hour/day counter once and
   * counting the batch's own enrollments in memory (the store re-checks every cap at commit).
   */
  private pacer(def: CadenceDefinition) {
    type Slot = { startAt?: number; counters: CounterBump[] };
    const cap = def.enrollment.cap;
    const zone = def.timezone ?? this.opts.timezone;
    const seen = new Map<string, number>();
    const count = async (key: string) => {
      if (!seen.has(key)) seen.set(key, (await this.store.counters([{ scope: 'enroll', key }]))[0]?.n ?? 0);
      return seen.get(key)!;
    };
    let t = this.clock.now();
    return {
      take: async (): Promise<Slot> => {
        if (!cap?.perHour && !cap?.perDay) return { counters: [] };
        for (let i = 0; i < 100_000; i++) {
          const h = `${def.id}|h|${bucketStart(t, 'hour', zone)}`;
          const d = `${def.id}|d|${bucketStart(t, 'day', zone)}`;
          if (cap.perHour && (await count(h)) >= cap.perHour) t = nextBucket(t, 'hour', zone);
          else if (cap.perDay && (await count(d)) >= cap.perDay) t = nextBucket(t, 'day', zone);
          else {
            const counters: CounterBump[] = [];
            if (cap.perHour) (counters.push({ scope: 'enroll', key: h, max: cap.perHour }), seen.set(h, (await count(h)) + 1));
            if (cap.perDay) (counters.push({ scope: 'enroll', key: d, max: cap.perDay }), seen.set(d, (await count(d)) + 1));
            return { startAt: t, counters };
          }
        }
        throw new CadenzaError('cap', 'E9', 'enrollment queue is longer than the pacing horizon');
      },
      giveBack: (slot: Slot) => {
        for (const b of slot.counters) seen.set(b.key, (seen.get(b.key) ?? 1) - 1);
        // Earlier buckets may have room again: start looking from the slot given back.
        if (slot.startAt !== undefined && slot.startAt < t) t = slot.startAt;
      },
    };
  }

  private async enrollOne(def: CadenceDefinition, version: number, rec: RecordSnapshot, by: string, known?: CriteriaResults): Promise<EnrollAnswer> {
    const criteria = known ?? (await this.evaluate(def, rec));
    const id = `${def.id}:${rec.id}`;
    for (let i = 0; i < MAX_CONFLICTS; i++) {
      if (await this.store.getEnrollment(id)) return ALREADY_ENROLLED(rec.id);
      const { startAt, counters } = await this.pacer(def).take(); // E9: the first hour/day bucket with room
      const ctx = await this.context(def, rec, criteria, null);
      const { next, effects } = transition(null, { type: 'enroll', id, version, by, startAt }, ctx);
      const rejected = effects.find((f) => f.type === 'reject');
      if (!next || rejected) return { recordId: rec.id, status: 'skipped', reason: rejected?.type === 'reject' ? rejected.reason : 'refused', rule: rejected?.type === 'reject' ? rejected.rule : 'E1' };
      if (await this.commit(null, next, effects, def, rec, by, ctx, counters)) return { recordId: rec.id, status: 'enrolled', enrollmentId: id, startAt: next.startedAt };
    }
    throw new CadenzaError('conflict', 'D2', `could not enroll ${rec.id}: too many concurrent changes`);
  }

  /** R1-R5: resume where it stopped, or restart from the first follow-up, on the active version. */
  async reenroll(cadenceId: string, recordId: string, mode: 'resume' | 'restart', actor: Actor): Promise<EnrollAnswer> {
    requirePermission(actor, 'enroll', 'R5');
    if (mode !== 'resume' && mode !== 'restart') throw new CadenzaError('invalid_mode', 'R1', 'mode must be "resume" or "restart"');
    const row = await this.requireCadence(cadenceId);
    if (row.status !== 'active' || !row.activeVersion) throw new CadenzaError('not_active', 'E1', `cadence "${cadenceId}" is not active`);
    const cur = await this.store.findEnrollment(cadenceId, recordId);
    if (!cur) return { recordId, status: 'skipped', reason: 'never enrolled: enroll instead', rule: 'R1' };
    const r = await this.apply(cur.enrollment.id, { type: 'reenroll', mode, version: row.activeVersion, by: actorId(actor) }, actor);
    const rej = r.effects.find((f) => f.type === 'reject');
    if (rej?.type === 'reject') return { recordId, status: 'skipped', reason: rej.reason, rule: rej.rule };
    return { recordId, status: 'enrolled', enrollmentId: cur.enrollment.id };
  }

  /**
   * D6: a failed enrollment runs just its failed step again, under the same key (a host that already
   * performed it recognises the key). R3's restart from the first follow-up stays available.
   */
  async retry(cadenceId: string, recordId: string, actor: Actor): Promise<EnrollAnswer> {
    requirePermission(actor, 'enroll', 'R5');
    const row = await this.requireCadence(cadenceId);
    if (row.status !== 'active') throw new CadenzaError('not_active', 'V3', `cadence "${cadenceId}" is ${row.status}: activate it to retry`);
    const cur = await this.store.findEnrollment(cadenceId, recordId);
    if (!cur) return { recordId, status: 'skipped', reason: 'never enrolled: enroll instead', rule: 'D6' };
    const r = await this.apply(cur.enrollment.id, { type: 'retry', by: actorId(actor) }, actor);
    const rej = r.effects.find((f) => f.type === 'reject');
    if (rej?.type === 'reject') return { recordId, status: 'skipped', reason: rej.reason, rule: rej.rule };
    return { recordId, status: 'enrolled', enrollmentId: cur.enrollment.id, reason: 'retried' };
  }

  /** U5: a user un-enrolls a record; every scheduled action of it is cancelled (U8). */
  async unenroll(cadenceId: string, recordId: string, actor: Actor, reason = 'un-enrolled manually (U5)'): Promise<Enrollment> {
    requirePermission(actor, 'unenroll');
    const cur = await this.store.findEnrollment(cadenceId, recordId);
    if (!cur) throw new CadenzaError('not_enrolled', 'U5', `record "${recordId}" is not enrolled in "${cadenceId}"`);
    const r = await this.apply(cur.enrollment.id, { type: 'unenroll', by: actorId(actor), reason }, actor);
    const rej = r.effects.find((f) => f.type === 'reject');
    if (rej?.type === 'reject') throw new CadenzaError('not_active', rej.rule, rej.reason);
    return r.state!;
  }

  // Outcomes (F2, F3, F5, U1, U10, U11, D3) ----------------------------------------------------------------

  /**
   * Records a response to a dispatched follow-up, by its idempotency key. A reply message, when given,
   * is classified first, so an out-of-office becomes `auto-replied` (U10).
   */
  async recordOutcome(input: { key: string; outcome: string; message?: InboundMessage }, actor: Actor = AUTOMATION): Promise<{ outcome: string; applied: boolean }> {
    requirePermission(actor, 'enroll'); // an outcome moves enrollments along their paths
    if (!input || typeof input.key !== 'string') throw new CadenzaError('invalid_outcome', 'D4', 'outcome.key must be the action\'s idempotency key');
    input = { ...input, key: engineKey(input.key) };
    const sent = await this.store.getOutbox(input.key);
    if (!sent) throw new CadenzaError('unknown_action', 'D4', `no dispatched action has key "${input.key}"`);
    const allowed = OUTCOMES[sent.channel as keyof typeof OUTCOMES] ?? [];
    let outcome = input.outcome;
    if (outcome === 'replied' && input.message) outcome = classifyReply(input.message);
    if (!allowed.includes(outcome)) throw new CadenzaError('invalid_outcome', 'D4', `"${outcome}" is not an outcome of a ${sent.channel} follow-up (${allowed.join(', ')})`);
    await this.store.addOutcome(input.key, sent.cadenceId, sent.nodeId, outcome, this.clock.now());
    const r = await this.apply(sent.enrollmentId, { type: 'outcome', key: input.key, outcome, by: actorId(actor) }, actor);
    const applied = !r.effects.some((f) => f.type === 'log' && f.event === 'outcomeIgnored');
    if (outcome === 'replied' && r.state) await this.colleaguesReplied(r.state, actor);
    return { outcome, applied };
  }

  /**
   * A reply as it arrives by mail: its In-Reply-To/References lead to the follow-up it answers
   * (our Message-IDs carry the signed key); automatic replies become `auto-replied` (U10).
   */
  async recordReply(message: InboundMessage & { inReplyTo?: unknown; references?: unknown; from?: string }, actor: Actor = AUTOMATION): Promise<{ key: string; outcome: string; applied: boolean } | null> {
    const h = Object.fromEntries(Object.entries(message?.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    let key = keyFromMessageIds([message?.inReplyTo, message?.references, h['in-reply-to'], h.references].flat(), this.opts.secret);
    // No Message-ID of ours: match by the sender's address to the latest email of an active enrollment.
    if (!key) key = await this.keyBySender(message?.from ?? (h.from as string | undefined));
    if (!key || !(await this.store.getOutbox(key))) return null;
    return { key, ...(await this.recordOutcome({ key, outcome: 'replied', message }, actor)) };
  }

  private async keyBySender(from: unknown): Promise<string | null> {
    const address = typeof from === 'string' ? /<?([^<>\s]+@[^<>\s]+)>?\s*$/.exec(from)?.[1] : undefined;
    if (!address) return null;
    let best: Enrollment | undefined;
    for (const rec of await this.store.findRecordsByEmail(address)) {
      for (const { enrollment: e } of await this.store.listEnrollments({ recordId: rec.id, status: 'active' })) {
        if (e.last?.channel === 'email' && (!best || e.last.at > best.last!.at)) best = e;
      }
    }
    return best?.last?.key ?? null;
  }

  /** P1: a new API key with scopes; the key is shown once, only its hash is stored. */
  async createApiKey(name: string, scopes: readonly string[], actor: Actor): Promise<{ id: string; key: string; scopes: string[] }> {
    requirePermission(actor, 'manage');
    const allowed = ['view', 'manage', 'enroll', 'unenroll', 'manageAutomation'];
    if (typeof name !== 'string' || !name.trim()) throw new CadenzaError('invalid_key', 'D4', 'a key needs a name');
    const bad = (Array.isArray(scopes) ? scopes : [scopes]).filter((x) => !allowed.includes(x as string));
    if (!Array.isArray(scopes) || !scopes.length || bad.length) throw new CadenzaError('invalid_key', 'P1', `scopes must be among ${allowed.join(', ')}`);
    const id = randomBytes(6).toString('hex');
    const key = `cz_${id}_${randomBytes(24).toString('base64url')}`;
    await this.store.addApiKey({ id, hash: hashKey(key), name: name.trim(), scopes: [...scopes], createdAt: this.clock.now(), revokedAt: null });
    await this.audit({ actor, event: 'apiKey', reason: `API key "${name.trim()}" created with ${scopes.join(', ')}` });
    return { id, key, scopes: [...scopes] };
  }

  /** The actor an API key stands for, with its scopes as permissions; undefined for an unknown or revoked key. */
  async authenticate(key: unknown): Promise<Exclude<Actor, string> | undefined> {
    if (typeof key !== 'string' || !key.startsWith('cz_') || key.length > 200) return undefined;
    const row = await this.store.findApiKey(hashKey(key));
    if (!row || row.revokedAt) return undefined;
    return { id: `key:${row.name}`, permissions: row.scopes as Permission[] };
  }

  /** Verifies a tracking or unsubscribe token signed by this runtime. */
  verifyLink(token: string): Record<string, string> | null {
    return verifyToken(token, this.opts.secret);
  }

  /** U11: a reply from one person un-enrolls everyone from the same company in the cadence. */
  private async colleaguesReplied(e: Enrollment, actor: Actor): Promise<void> {
    const def = await this.definition(e.cadenceId, e.version);
    if (!def.unenroll?.companyReply) return;
    const rec = await this.store.getRecord(e.module, e.recordId);
    const company = rec && companyOf(rec);
    if (!company) return;
    await this.eachEnrollment(e.cadenceId, 'active', async (other) => {
      if (other.enrollment.id === e.id) return;
      const r = await this.store.getRecord(other.enrollment.module, other.enrollment.recordId);
      if (r && companyOf(r) === company) await this.apply(other.enrollment.id, { type: 'unenroll', by: AUTOMATION, reason: `${rec!.id} from the same company replied (U11)` }, actor);
    });
  }

  // The scheduler and the hand-off (D1, D2, D5, D6) ----------------------------------------------------------

  /**
   * One pass: fire due timers, hand off what is queued, and wait for those hand-offs to be confirmed or
   * to fail (at most the hand-off time limit). Tests, the simulator and worker processes call it;
   * `start()` runs passes that do not wait, so a slow performer never holds back timers.
   */
  async tick(scope: TickScope = {}): Promise<{ timers: number; dispatched: number; failed: number }> {
    const before = { ...this.counts };
    const timers = await this.pass(scope, true);
    return { timers, dispatched: this.counts.delivered - before.delivered, failed: this.counts.failed - before.failed };
  }

  /** Hand-offs confirmed and failed since start (tick() reports the difference). */
  private readonly counts = { delivered: 0, failed: 0 };

  private async pass(scope: TickScope, wait: boolean): Promise<number> {
    if (scope.cadences && !scope.cadences.length) return 0;
    const now = this.clock.now();
    const handOffs: Promise<void>[] = [];
    let timers = 0;
    for (;;) {
      const due = await this.store.claimTimers(now, this.opts.batchSize, now + this.opts.leaseMs, scope.cadences);
      timers += due.length;
      // Cadence-level timers first (U4 un-enrollment wins, U6), then the enrollments' as one batch,
      // then one by one whatever the batch left.
      await this.fireEach(due.filter((t) => t.kind !== 'enrollment'));
      const batch = await this.stepMany(due.filter((t) => t.kind === 'enrollment').map((t) => ({ id: t.id.slice(2), event: { type: 'timer' } as MachineEvent, t })), AUTOMATION, true);
      if (batch.queued.length) handOffs.push(this.handOff(batch.queued));
      await this.fireEach(batch.rest.map((r) => r.t));
      if (due.length < this.opts.batchSize) break;
    }
    // The outbox: actions queued by others or left for want of a free slot, retries whose time has come,
    // leases of dead workers ended. A waiting pass goes on as slots free up, until none is left to claim.
    for (;;) {
      let drained = true;
      for (let free = this.dispatcher.free(); free > 0 && (this.handler || this.batchHandler); free = this.dispatcher.free()) {
        const t = this.clock.now();
        // A slot takes one action, or a whole batch when the host takes batches.
        const limit = this.batchHandler ? this.opts.batchSize : Math.min(free, this.opts.batchSize);
        const rows = await this.store.claimOutbox(t, limit, t + this.opts.leaseMs, scope.cadences);
        if (rows.length) handOffs.push(this.handOff(rows));
        drained = rows.length < limit;
        if (drained) break;
      }
      if (!wait) break;
      await Promise.all(handOffs.splice(0));
      if (drained) break;
    }
    return timers;
  }

  private async fireEach(list: TimerRow[]): Promise<void> {
    for (const t of list) {
      try {
        await this.fire(t);
      } catch (e) {
        // One bad timer must not stall the others; its lease expires and it is tried again.
        this.emit({ type: 'error', error: `timer ${t.id}: ${e instanceof Error ? e.message : String(e)}` });
      }
    }
  }

  /** Leased rows to the host: one hand-off per row, or the whole batch to a batch handler. */
  private handOff(rows: OutboxRow[]): Promise<void> {
    return this.dispatcher.handOff(this.batchHandler ? [rows] : rows.map((r) => [r]), this.opts.leaseMs);
  }

  private perform(rows: OutboxRow[]): Promise<unknown> {
    const actions = rows.map((row) => ({ ...(row.payload as DispatchedAction), attempt: row.attempts }));
    if (this.batchHandler) return Promise.resolve().then(() => this.batchHandler!(actions));
    if (!this.handler) return Promise.reject(new Error('no dispatch handler registered'));
    return Promise.resolve().then(() => this.handler!(actions[0]));
  }

  /** What came of hand-offs, as machine events: delivered (D5), or a failure the policy retries or gives up on (D6). */
  private async reported(results: HandOffResult[]): Promise<void> {
    try {
      const now = this.clock.now();
      const delivered = results.filter((r) => !r.failure).map((r) => r.row);
      const verdicts: { row: OutboxRow; reason: string }[] = [];
      for (const { row, failure } of results) {
        if (!failure) continue;
        this.counts.failed++;
        this.emit({ type: 'dispatchFailed', key: row.key, nodeId: row.nodeId, error: failure.message });
        const d = afterFailure(this.delivery, row.attempts, row.createdAt, now, failure, Math.random());
        if ('giveUp' in d) verdicts.push({ row, reason: d.giveUp });
        else {
          await this.store.retryOutbox(row.key, d.retryAt, failure.message);
          await this.audit({ cadenceId: row.cadenceId, enrollmentId: row.enrollmentId, recordId: row.recordId, actor: AUTOMATION, event: 'waiting', reason: `${row.nodeId}: ${d.reason} (D6)`, data: { key: row.key, attempt: row.attempts } });
        }
      }
      for (const row of delivered) (this.counts.delivered++, this.emit({ type: 'dispatched', key: row.key, nodeId: row.nodeId }));
      await this.settle([
        ...delivered.map((row) => ({ id: row.enrollmentId, event: { type: 'delivered', key: row.key } as MachineEvent })),
        ...verdicts.map((v) => ({ id: v.row.enrollmentId, event: { type: 'deliveryFailed', key: v.row.key, reason: v.reason } as MachineEvent })),
      ]);
      this.nudge();
    } catch (e) {
      // A report that could not be written: the rows stay leased and are handed off again when the lease ends (same key).
      this.emit({ type: 'error', error: `recording deliveries: ${e instanceof Error ? e.message : String(e)}` });
    }
  }

  /** Delivery events for many enrollments in one commit; whatever conflicts goes one by one. */
  private async settle(items: { id: string; event: MachineEvent }[]): Promise<void> {
    if (!items.length) return;
    const { rest } = await this.stepMany(items, AUTOMATION, false);
    for (const r of rest) await this.apply(r.id, r.event, AUTOMATION).catch((e) => this.emit({ type: 'error', error: String(e) }));
  }

  /**
   * The one step path for N enrollments (N = 1 included): one read of the enrollments, one of their
   * records, every transition in memory, one store call for all (set-based on Postgres). Capped counters
   * (F12 sender per day, C5 actions) are read once and advanced in memory, so each step sees the ones
   * before it; the store re-checks every cap. Returns the items to take one by one (conflicts with
   * another worker, nothing to do, anything unusual) and, when `handOff`, the actions queued, written
   * already leased so this process hands them off at once.
   */
  private async stepMany<T extends { id: string; event: MachineEvent }>(items: T[], actor: Actor, handOff: boolean): Promise<{ rest: T[]; queued: OutboxRow[] }> {
    const rest: T[] = [];
    if (!items.length) return { rest, queued: [] };
    const byId = new Map((await this.store.getEnrollments([...new Set(items.map((x) => x.id))])).map((e) => [e.enrollment.id, e]));
    const records = new Map((await this.store.getRecords([...byId.values()].map((e) => ({ module: e.enrollment.module, id: e.enrollment.recordId })))).map((r) => [`${r.module}\u0000${r.id}`, r]));
    const prepared: { x: T; cur: StoredEnrollment; def: CadenceDefinition; rec: RecordSnapshot | null; criteria: CriteriaResults }[] = [];
    const wanted = new Map<string, { scope: string; key: string }>();
    const seen = new Set<string>();
    for (const x of items) {
      const cur = byId.get(x.id);
      // Two events for one enrollment in one batch: the second goes one by one, after the first.
      if (!cur || seen.has(x.id)) {
        rest.push(x);
        continue;
      }
      seen.add(x.id);
      try {
        const e = cur.enrollment;
        const def = await this.definition(e.cadenceId, e.version);
        const rec = records.get(`${e.module}\u0000${e.recordId}`) ?? null;
        const criteria = rec ? await this.evaluate(def, rec) : { checks: {} };
        await this.context(def, rec, criteria, e, (scope, key) => (wanted.set(`${scope}\u0000${key}`, { scope, key }), 0));
        prepared.push({ x, cur, def, rec, criteria });
      } catch {
        rest.push(x);
      }
    }
    const counts = new Map((await this.store.counters([...wanted.values()])).map((c) => [`${c.scope}\u0000${c.key}`, c.n]));
    const steps: { x: T; next: Enrollment; effects: Effect[]; commit: Commit }[] = [];
    for (const { x, cur, def, rec, criteria } of prepared) {
      try {
        const e = cur.enrollment;
        const ctx = await this.context(def, rec, criteria, e, (scope, key) => counts.get(`${scope}\u0000${key}`) ?? 0);
        const { next, effects } = transition(e, x.event, ctx);
        if (!next || (next === e && !effects.some((f) => f.type === 'settle')) || effects.some((f) => f.type === 'reject')) {
          rest.push(x);
          continue;
        }
        const commit = this.buildCommit(cur, next, effects, def, rec, actorId(actor), ctx, []);
        for (const b of commit.counters) counts.set(`${b.scope}\u0000${b.key}`, (counts.get(`${b.scope}\u0000${b.key}`) ?? 0) + 1);
        steps.push({ x, next, effects, commit });
      } catch {
        rest.push(x);
      }
    }
    // Written already leased only when this process can hand them off now; otherwise they wait for a claim.
    const queuedCount = steps.reduce((n, s) => n + s.commit.outbox.length, 0);
    const lease = handOff && queuedCount && (this.handler || this.batchHandler) && this.dispatcher.free() >= (this.batchHandler ? 1 : queuedCount)
      ? this.clock.now() + this.opts.leaseMs : undefined;
    const applied = steps.length ? await this.store.commitMany(steps.map((s) => ({ ...s.commit, handOffUntil: lease }))) : [];
    const queued: OutboxRow[] = [];
    steps.forEach((s, i) => {
      if (!applied[i]) return rest.push(s.x);
      this.committed(s.next, s.effects);
      if (lease) for (const o of s.commit.outbox) queued.push({ ...o, status: 'pending', attempts: 1 });
    });
    return { rest, queued };
  }

  private async fire(t: TimerRow): Promise<void> {
    const { id: timerId, kind, cadenceId } = t;
    if (kind === 'enrollment') {
      const id = timerId.slice(2);
      if (!(await this.store.getEnrollment(id))) return this.store.releaseTimer(timerId, t.dueAt, null);
      const r = await this.apply(id, { type: 'timer' }, AUTOMATION);
      // A timer that decided nothing (stale: another worker moved the enrollment) is given back as the
      // state wants it, never left locked — and never over a timer a newer commit armed.
      if (r.state && !r.effects.length) await this.store.releaseTimer(timerId, t.dueAt, r.state.status === 'active' ? r.state.dueAt : null);
      return;
    }
    const row = await this.store.getCadence(cadenceId);
    if (!row?.activeVersion) return this.store.deleteTimer(timerId);
    const def = await this.definition(cadenceId, row.activeVersion);
    if (kind === 'unenrollDate') {
      // U4 + U7: runs whether or not the cadence is active.
      await this.store.deleteTimer(timerId);
      await this.eachEnrollment(cadenceId, 'active', (e) => this.apply(e.enrollment.id, { type: 'unenroll', by: AUTOMATION, reason: `un-enroll date ${def.unenroll!.onDate} (U4)` }, AUTOMATION));
    } else if (kind === 'viewRecheck') {
      // E7: time-dependent criteria are re-read as the clock moves, not only when a record changes.
      await this.store.setTimer({ id: timerId, kind: 'viewRecheck', cadenceId, dueAt: this.clock.now() + this.opts.recheckMs, priority: 2 });
      if (row.status !== 'active') return;
      await this.eachRecordPage(def.module, (page) => this.reactMany(page, AUTOMATION));
    }
  }

  /** Hand-offs of this process waiting for their performer's verdict, by key (see awaitConfirmation). */
  private readonly confirmations = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();

  /**
   * For a handler whose performer answers later, elsewhere in the host (a Node-RED flow's Complete and
   * Catch nodes): return this from the handler, and the hand-off ends when confirmDelivery(key) is
   * called — or fails as a time-out after the hand-off time limit and is retried under the same key.
   */
  awaitConfirmation(key: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.confirmations.get(key)?.reject(new Error('handed off again'));
      const done = () => this.confirmations.delete(key);
      this.confirmations.set(key, { resolve: () => (done(), resolve()), reject: (e) => (done(), reject(e)) });
    });
  }

  /**
   * D5: the performer's verdict on an action, by its key (the idempotency key the host received). A
   * failure is transient unless `permanent` (D6). A verdict for a hand-off no longer waiting here (the
   * process restarted, it timed out) is recorded all the same.
   */
  async confirmDelivery(key: string, error?: { message: string; permanent?: boolean }): Promise<{ applied: boolean }> {
    if (typeof key !== 'string' || !key) throw new CadenzaError('invalid_outcome', 'D4', 'the action\'s key (msg.cadenza.key) is required to confirm a delivery');
    key = engineKey(key);
    const failure = error ? Object.assign(new Error(error.message || 'the performer failed'), { permanent: !!error.permanent }) : null;
    const waiting = this.confirmations.get(key);
    if (waiting) {
      if (failure) waiting.reject(failure);
      else waiting.resolve();
      return { applied: true };
    }
    const row = await this.store.getOutbox(key);
    if (!row) throw new CadenzaError('unknown_action', 'D4', `no dispatched action has key "${key}"`);
    if (row.status !== 'pending') return { applied: false };
    await this.reported([{ row, failure: failure && { message: failure.message, permanent: failure.permanent } }]);
    return { applied: true };
  }

  /**
   * Runs the scheduler against the real clock, one timer for the whole loop (never one per record).
   * Passes do not wait for hand-offs: those run beside it, at bounded concurrency, and a confirmed one
   * wakes the loop at once (its next step may be due now). `scope` is read before each pass.
   */
  start(intervalMs = 1000, scope: () => TickScope = () => ({})): void {
    if (this.loop) return;
    const run = async () => {
      this.woken = false;
      this.ticking = this.pass(scope(), false).catch((e) => this.emit({ type: 'error', error: String(e) }));
      await this.ticking;
      this.ticking = null;
      if (this.loop) this.loop = setTimeout(run, this.woken ? 0 : intervalMs);
    };
    this.wake = () => {
      if (!this.loop) return;
      this.woken = true; // a pass running now goes again at once when it ends
      if (!this.ticking) (clearTimeout(this.loop), (this.loop = setTimeout(run, 0)));
    };
    this.loop = setTimeout(run, 0);
  }

  private woken = false;
  private wake: () => void = () => undefined;

  /** A delivery was recorded: the loop's next pass comes now rather than after the interval. */
  private nudge(): void {
    this.wake();
  }

  async stop(): Promise<void> {
    if (this.loop) clearTimeout(this.loop);
    this.loop = null;
    await this.ticking;
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([this.dispatcher.idle(), new Promise<void>((r) => (grace = setTimeout(r, this.opts.stopGraceMs ?? 5000)))]);
    clearTimeout(grace);
  }

  /** Virtual time: moves a VirtualClock from due time to due time until `until`, ticking at each. */
  async runUntil(until: number, clock: { set(t: number): void; now(): number }, scope: TickScope = {}): Promise<void> {
    for (;;) {
      await this.tick(scope);
      const next = await this.store.nextDue(scope.cadences);
      if (next === null || next > until) break;
      clock.set(Math.max(next, clock.now()));
    }
    if (clock.now() < until) clock.set(until);
  }

  // Reports (A1, A2, A3, U9) -----------------------------------------------------------------------------

  async cadenceReport(id: string, actor: Actor = AUTOMATION) {
    requirePermission(actor, 'view', 'P2');
    const row = await this.requireCadence(id);
    const stats = await this.store.cadenceStats(id);
    const count = (s: string) => stats.byStatus.filter((r) => r.status === s).reduce((a, r) => a + r.n, 0);
    const executed = Object.fromEntries(stats.executed.map((r) => [r.nodeId, r.n]));
    const waiting = Object.fromEntries(stats.waiting.map((r) => [r.nodeId, r.n]));
    const followUps = (row.activeVersion ? (await this.definition(id, row.activeVersion)).nodes : [])
      .filter((n): n is FollowUpNode => n.type === 'followUp')
      .map((n) => {
        const ran = executed[n.id] ?? 0;
        const outcomes = Object.fromEntries(stats.outcomes.filter((o) => o.nodeId === n.id).map((o) => [o.outcome, { count: o.n, rate: ran ? o.n / ran : 0 }]));
        // D6: actions whose performer is failing, held and retried under their key.
        return { nodeId: n.id, name: n.name ?? n.id, channel: n.channel, executed: ran, waitingForPerformer: waiting[n.id] ?? 0, outcomes };
      });
    return {
      cadenceId: id, status: row.status, version: row.activeVersion,
      enrolled: stats.byStatus.reduce((a, r) => a + r.n, 0), active: count('active'), completed: count('completed'), failed: count('failed'),
      stopped: count('stopped'),
      stoppedByReason: Object.fromEntries(stats.byStatus.filter((r) => r.status === 'stopped').map((r) => [r.reason, r.n])),
      failedByReason: Object.fromEntries(stats.byStatus.filter((r) => r.status === 'failed').map((r) => [r.reason, r.n])),
      followUps,
    };
  }

  /** A2: every cadence a record is or was in. */
  async recordReport(recordId: string, actor: Actor = AUTOMATION) {
    requirePermission(actor, 'view', 'P2');
    return (await this.store.listEnrollments({ recordId })).map(({ enrollment: e }) => ({
      cadenceId: e.cadenceId, enrollmentId: e.id, startedAt: e.startedAt, enrolledBy: e.enrolledBy, status: e.status, reason: e.reason, position: e.position, version: e.version,
    }));
  }

  /** A3 + U9: the ordered log of inputs and decisions of one enrollment. */
  async why(enrollmentId: string, actor: Actor = AUTOMATION): Promise<AuditRow[]> {
    requirePermission(actor, 'view', 'P2');
    return this.store.listAudit({ enrollmentId });
  }

  async auditLog(filter: { recordId?: string; cadenceId?: string }, actor: Actor = AUTOMATION): Promise<AuditRow[]> {
    requirePermission(actor, 'view', 'P2');
    if (!filter.recordId && !filter.cadenceId) throw new CadenzaError('invalid_filter', 'D4', 'give recordId or cadenceId');
    return this.store.listAudit(filter);
  }

  async getEnrollment(cadenceId: string, recordId: string): Promise<Enrollment | undefined> {
    return (await this.store.findEnrollment(cadenceId, recordId))?.enrollment;
  }

  /** The cadences, with what is published and what is drafted (P2: view). */
  async listCadences(actor: Actor = AUTOMATION, module?: string): Promise<CadenceRow[]> {
    requirePermission(actor, 'view', 'P2');
    return this.store.listCadences(module);
  }

  async getCadence(id: string, actor: Actor = AUTOMATION): Promise<{ cadence: CadenceRow; definition: CadenceDefinition | null }> {
    requirePermission(actor, 'view', 'P2');
    const cadence = await this.requireCadence(id);
    return { cadence, definition: cadence.activeVersion ? await this.definition(id, cadence.activeVersion) : null };
  }

  async listEnrollments(cadenceId: string, filter: { status?: Enrollment['status']; after?: string; limit?: number }, actor: Actor = AUTOMATION): Promise<Enrollment[]> {
    requirePermission(actor, 'view', 'P2');
    await this.requireCadence(cadenceId);
    const statuses = ['active', 'completed', 'stopped', 'failed'];
    if (filter.status !== undefined && !statuses.includes(filter.status)) throw new CadenzaError('invalid_filter', 'D4', `status must be one of ${statuses.join(', ')}`);
    const limit = Math.min(Math.max(Number(filter.limit) || 100, 1), 1000);
    return (await this.store.listEnrollments({ cadenceId, status: filter.status, after: filter.after, limit })).map((e) => e.enrollment);
  }

  // Internals -------------------------------------------------------------------------------------------

  /** Read, transition, commit; retried from a fresh read when another worker committed first. */
  private async apply(enrollmentId: string, event: MachineEvent, actor: Actor): Promise<StepResult> {
    for (let i = 0; i < MAX_CONFLICTS; i++) {
      const cur = await this.store.getEnrollment(enrollmentId);
      if (!cur) throw new CadenzaError('unknown_enrollment', 'D4', `no enrollment "${enrollmentId}"`);
      const e = cur.enrollment;
      const version = event.type === 'reenroll' ? event.version : e.version;
      const def = await this.definition(e.cadenceId, version);
      const rec = (await this.store.getRecord(e.module, e.recordId)) ?? null;
      const criteria = rec ? await this.evaluate(def, rec) : { checks: {} };
      const ctx = await this.context(def, rec, criteria, e);
      const { next, effects } = transition(e, event, ctx);
      if (!next || (next === e && effects.every((f) => f.type === 'reject'))) return { state: next, effects };
      if (next === e && !effects.length) return { state: e, effects };
      if (await this.commit(cur, next, effects, def, rec, actorId(actor), ctx, [])) return { state: next, effects };
    }
    throw new CadenzaError('conflict', 'D2', `enrollment ${enrollmentId} changed too often concurrently`);
  }

  private async commit(
    cur: StoredEnrollment | null, next: Enrollment, effects: Effect[], def: CadenceDefinition,
    rec: RecordSnapshot | null, actor: string, ctx: Context, counters: CounterBump[],
  ): Promise<boolean> {
    const ok = await this.store.commit(this.buildCommit(cur, next, effects, def, rec, actor, ctx, counters));
    if (ok) this.committed(next, effects);
    return ok;
  }

  private committed(next: Enrollment, effects: Effect[]): void {
    this.emit({ type: 'changed', enrollment: next });
    for (const f of effects) if (f.type === 'left') this.emit({ type: 'left', enrollment: next, nodeId: f.nodeId });
  }

  /** The writes of one step: state, rendered outbox rows, audit rows and capped counters. */
  private buildCommit(
    cur: StoredEnrollment | null, next: Enrollment, effects: Effect[], def: CadenceDefinition,
    rec: RecordSnapshot | null, actor: string, ctx: Context, counters: CounterBump[],
  ): Commit {
    const now = this.clock.now();
    const outbox = [];
    const audit: AuditRow[] = [];
    const bumps = [...counters];
    const outboxChanges: OutboxChange[] = [];
    let timer: number | null | undefined;
    for (const f of effects) {
      if (f.type === 'log') audit.push({ at: now, cadenceId: next.cadenceId, enrollmentId: next.id, recordId: next.recordId, actor, event: f.event, reason: f.reason, data: f.data ?? null });
      if (f.type === 'timer') timer = f.at;
      if (f.type === 'cancel' || f.type === 'requeue') outboxChanges.push({ key: f.key, op: f.type });
      if (f.type === 'settle') outboxChanges.push({ key: f.key, op: f.status });
      if (f.type !== 'dispatch') continue;
      const node = findNode(def, f.action.nodeId) as FollowUpNode;
      const payload: DispatchedAction = {
        ...f.action, idempotencyKey: headerSafeKey(f.action.key), module: next.module, attempt: 0, record: rec?.data ?? {},
        ...this.renderFor(f.action, node, rec!, now, zoneOf(ctx), def),
      };
      outbox.push({ key: f.action.key, enrollmentId: next.id, cadenceId: next.cadenceId, nodeId: node.id, recordId: next.recordId, channel: node.channel, payload, availableAt: now, createdAt: now });
      if (node.channel === 'email' && def.senderDailyCap) bumps.push({ scope: 'sender', key: capKey(node, ctx), max: def.senderDailyCap });
      if (this.opts.limits?.actionsPerCadence) bumps.push({ scope: 'actions', key: def.id, max: this.opts.limits.actionsPerCadence });
    }
    return { enrollment: next, expectedRev: cur ? cur.rev : null, timer, outbox, outboxChanges, audit, counters: bumps };
  }

  private renderFor(action: ActionRef, node: FollowUpNode, rec: RecordSnapshot, now: number, zone: string, def: CadenceDefinition): Partial<DispatchedAction> {
    // F7: a task's due date in the cadence's calendar (business days skip weekends and holidays).
    const dueAt = addDelay(now, node.dueIn ?? { amount: 1, unit: 'days' }, zone, def.sendWindow);
    const out = render(action, node, rec, { templates: this.opts.templates ?? {}, defaultSender: this.opts.defaultSender, secret: this.opts.secret, baseUrl: this.opts.baseUrl, users: this.opts.users }, dueAt);
    if (node.channel === 'email') return { email: out as EmailPayload };
    if (node.channel === 'whatsapp') return { whatsapp: out as WhatsAppPayload };
    return { activity: out as ActivityPayload };
  }

  private async context(
    def: CadenceDefinition, rec: RecordSnapshot | null, criteria: CriteriaResults, e: Enrollment | null,
    counter: (scope: string, key: string) => number | Promise<number> = (scope, key) => this.store.counter(scope, key),
  ): Promise<Context> {
    const ctx: Context = {
      now: this.clock.now(), def, record: rec, criteria, timezone: this.opts.timezone, defaultSender: this.opts.defaultSender,
      templates: this.templateIds, sentToday: {}, actionsLeft: Infinity,
    };
    const node = findNode(def, e?.position);
    if (e?.wait === 'due' && node?.type === 'followUp') {
      if (node.channel === 'email' && def.senderDailyCap) {
        const key = capKey(node, ctx);
        ctx.sentToday = { [key]: await counter('sender', key) };
      }
      const limit = this.opts.limits?.actionsPerCadence;
      if (limit) ctx.actionsLeft = limit - (await counter('actions', def.id));
    }
    return ctx;
  }

  /** All criteria of a definition against one record, at the engine clock; errors count as "no match". */
  private async evaluate(def: CadenceDefinition, rec: RecordSnapshot): Promise<CriteriaResults> {
    const now = this.clock.now();
    const test = async (expr: string | undefined) => {
      if (!expr) return undefined;
      try {
        return await this.criteria.test(expr, rec.data, now);
      } catch (e) {
        if (e instanceof CriteriaError) return false;
        throw e;
      }
    };
    const checks: Record<string, boolean> = {};
    for (const n of def.nodes) if (n.type === 'unenrollCheck') checks[n.id] = (await test(n.criteria)) ?? false;
    return { view: await test(def.enrollment.view), exit: await test(def.unenroll?.criteria), checks };
  }

  private async enrollMatching(def: CadenceDefinition): Promise<number> {
    if (def.enrollment.mode !== 'view') return 0;
    const row = await this.requireCadence(def.id);
    let n = 0;
    // Page by page: enrollMany skips records already enrolled (E6) with one read per page.
    await this.eachRecordPage(def.module, async (page) => {
      const matching: RecordSnapshot[] = [];
      const known = new Map<string, CriteriaResults>();
      for (const rec of page) {
        const criteria = await this.evaluate(def, rec);
        if (criteria.view) (matching.push(rec), known.set(rec.id, criteria));
      }
      n += (await this.enrollMany(def, row.activeVersion!, matching, AUTOMATION, known)).filter((a) => a.status === 'enrolled').length;
    });
    return n;
  }

  private async scheduleCadenceTimers(def: CadenceDefinition): Promise<void> {
    const onDate = def.unenroll?.onDate && parseInstant(def.unenroll.onDate, def.timezone ?? this.opts.timezone);
    if (onDate) await this.store.setTimer({ id: `u4:${def.id}`, kind: 'unenrollDate', cadenceId: def.id, dueAt: onDate, priority: 0 });
    else await this.store.deleteTimer(`u4:${def.id}`);
    const timed = [def.enrollment.view, def.unenroll?.criteria, ...def.nodes.map((n) => (n.type === 'unenrollCheck' ? n.criteria : undefined))]
      .some((x) => x && Criteria.dependsOnTime(x));
    if (timed) await this.store.setTimer({ id: `e7:${def.id}`, kind: 'viewRecheck', cadenceId: def.id, dueAt: this.clock.now() + this.opts.recheckMs, priority: 2 });
    else await this.store.deleteTimer(`e7:${def.id}`);
  }

  async definition(cadenceId: string, version: number): Promise<CadenceDefinition> {
    const k = `${cadenceId}@${version}`;
    let def = this.versions.get(k);
    if (!def) {
      def = await this.store.getVersion(cadenceId, version);
      if (!def) throw new CadenzaError('unknown_version', 'V1', `cadence "${cadenceId}" has no version ${version}`);
      this.versions.set(k, def);
    }
    return def;
  }

  private async requireCadence(id: string): Promise<CadenceRow> {
    if (typeof id !== 'string') throw new CadenzaError('unknown_cadence', 'D4', 'cadence id must be a string');
    const row = await this.store.getCadence(id);
    if (!row) throw new CadenzaError('unknown_cadence', 'D4', `unknown cadence "${id}"`);
    return row;
  }

  private async requireRecord(module: string, id: string): Promise<RecordSnapshot> {
    const rec = await this.store.getRecord(module, id);
    if (!rec) throw new CadenzaError('unknown_record', 'D4', `unknown ${module} record "${id}"`);
    return rec;
  }

  private async checkActiveLimit(module: string) {
    const active = (await this.store.listCadences(module)).filter((c) => c.status === 'active').length;
    const limit = moduleLimits(this.opts.limits).active;
    if (active >= limit) throw new CadenzaError('limit', 'C3', `module ${module} already has ${active} active cadences (limit ${limit})`);
  }

  /** D4: a record needs a string or number id and an object body of bounded size. */
  private checkRecord(module: string, input: unknown): RecordSnapshot {
    if (typeof module !== 'string' || !module) throw new CadenzaError('invalid_record', 'D4', 'module must be a non-empty string');
    if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new CadenzaError('invalid_record', 'D4', 'record must be a JSON object');
    const data = input as Record<string, unknown>;
    const id = data.id;
    if ((typeof id !== 'string' || !id.trim()) && typeof id !== 'number') throw new CadenzaError('invalid_record', 'D4', 'record.id is required (a non-empty string or a number)');
    const problem = recordIdProblem(String(id));
    if (problem) throw new CadenzaError('invalid_record', 'D4', problem);
    const size = Buffer.byteLength(JSON.stringify(data));
    if (size > this.opts.maxRecordBytes) throw new CadenzaError('payload_too_large', 'D4', `record ${id} is ${size} bytes (limit ${this.opts.maxRecordBytes})`);
    return { id: String(id), module, data, unsubscribed: data.Email_Opt_Out === true };
  }

  private async eachRecord(module: string, fn: (r: RecordSnapshot) => Promise<unknown>): Promise<void> {
    await this.eachRecordPage(module, async (page) => {
      for (const r of page) await fn(r);
    });
  }

  private async eachRecordPage(module: string, fn: (page: RecordSnapshot[]) => Promise<unknown>): Promise<void> {
    let after: string | null = null;
    for (;;) {
      const page = await this.store.listRecords(module, after, 500);
      await fn(page);
      if (page.length < 500) return;
      after = page[page.length - 1].id;
    }
  }

  private async eachEnrollment(cadenceId: string, status: Enrollment['status'], fn: (e: StoredEnrollment) => Promise<unknown>): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listEnrollments({ cadenceId, status, after, limit: 500 });
      for (const e of page) await fn(e);
      if (page.length < 500) return;
      after = page[page.length - 1].enrollment.id;
    }
  }

  private async audit(a: { cadenceId?: string; enrollmentId?: string; recordId?: string; actor: Actor; event: string; reason: string; data?: Record<string, unknown> }) {
    await this.store.addAudit([{ at: this.clock.now(), cadenceId: a.cadenceId ?? null, enrollmentId: a.enrollmentId ?? null, recordId: a.recordId ?? null,
      actor: actorId(a.actor), event: a.event, reason: a.reason, data: a.data ?? null }]);
  }
}

function recordIdOf(item: unknown): string {
  if (typeof item === 'object' && item !== null) return 'id' in item ? String((item as { id: unknown }).id) : '(missing id)';
  return String(item);
}

/** U11: the company of a record: its account, else its email domain. */
function companyOf(rec: RecordSnapshot): string | undefined {
  const account = rec.data.Account_Id ?? rec.data.Account_Name ?? rec.data.Company;
  if (typeof account === 'string' && account) return `account:${account.toLowerCase()}`;
  const email = rec.data.Email;
  if (typeof email === 'string' && email.includes('@')) return `domain:${email.split('@')[1].toLowerCase()}`;
  return undefined;
}

export { actionKey, zoneOf };
