// What every part of the runtime shares: the store, the clock, the resolved options, the compiled
// criteria and definition caches, the event listeners, and the small reads and writes all use cases
// repeat (require a cadence or record, page through records and enrollments, audit). The step pipeline
// itself is in step.ts; the use cases are functions over one Core.
import type { Criteria } from '../criteria/criteria';
import { boundedCriteria } from '../sandbox/sandbox';
import { fatigueProblems, shapeProblem } from '../model/validate';
import type { Enrollment, RecordSnapshot } from '../machine/types';
import { usersProblems } from '../model/users';
import { CadenzaError } from '../model/errors';
import type { CadenceDefinition } from '../model/types';
import type { CadenceRow, Commit, Store, StoredEnrollment } from '../store/store';
import { systemClock, type Clock } from './clock';
import { recordIdProblem } from './keys';
import { actorId, type Actor } from './permissions';
import type { RuntimeEvent, RuntimeOptions } from './types';

export type ResolvedOptions = Required<Pick<RuntimeOptions, 'timezone' | 'defaultSender' | 'baseUrl' | 'batchSize' | 'leaseMs' | 'recheckMs' | 'maxRecordBytes'>> &
  RuntimeOptions & { secret: string };

/** Records and enrollments are read in pages of this size, so no use case holds a whole module in memory. */
export const PAGE = 500;

export class Core {
  readonly store: Store;
  readonly clock: Clock;
  /** Views and criteria: the fast path in process, anything else in the bounded sandbox (issue 14). */
  readonly criteria: Criteria = boundedCriteria();
  /** The options with their defaults; `secret` is filled in by Runtime.init when none was configured. */
  readonly opts: ResolvedOptions;
  readonly templateIds: ReadonlySet<string>;
  /** The approved WhatsApp templates (C4), when a list is configured. */
  readonly whatsappTemplateIds: ReadonlySet<string> | undefined;
  readonly listeners = new Set<(e: RuntimeEvent) => void>();
  /** Called with a cadence id when a commit made work of it due now (the scheduler wakes, issue 15). */
  readonly dueListeners = new Set<(cadenceId: string) => void>();
  /** Published versions are immutable (V1), so each is read from the store once per process. */
  private readonly versions = new Map<string, CadenceDefinition>();

  constructor(options: RuntimeOptions) {
    if (options.fatigue !== undefined) {
      const problems = fatigueProblems(options.fatigue, 'fatigue').map((p) => ({ rule: 'F13', ...p }));
      if (problems.length) throw new CadenzaError('invalid_options', 'F13', 'invalid contact limits (F13)', problems);
    }
    if (options.users !== undefined) {
      const problems = usersProblems(options.users, 'users');
      if (problems.length) throw new CadenzaError('invalid_options', problems[0].rule, 'invalid user directory (F6, F7)', problems);
    }
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.opts = {
      timezone: 'UTC', defaultSender: 'cadenza@localhost', baseUrl: 'http://localhost:1880', batchSize: 200,
      // An option given as undefined (a host passing on a setting nobody filled in) keeps its default:
      // `cadenza serve` without --sender once overwrote the default sender and no email could render.
      leaseMs: 60_000, recheckMs: 3_600_000, maxRecordBytes: 256 * 1024, ...defined(options), secret: options.secret ?? '',
    };
    this.templateIds = new Set(Object.keys(options.templates ?? {}));
    this.whatsappTemplateIds = options.whatsappTemplates ? new Set(options.whatsappTemplates) : undefined;
  }

  emit(e: RuntimeEvent): void {
    for (const fn of this.listeners) fn(e);
  }

  /**
   * After commits: those that made work due now (a timer due already, an action queued that nobody
   * took, a retry) wake this process's scheduler at once, and other processes through the store
   * (PostgreSQL: NOTIFY). Sent after the commit, so a woken scheduler finds it; a notification lost to
   * a crash costs one poll interval, never the step.
   */
  woke(commits: readonly Commit[]): void {
    const now = this.clock.now();
    const ids = [...new Set(commits.filter((c) => dueNow(c, now)).map((c) => c.enrollment.cadenceId))];
    if (!ids.length) return;
    for (const id of ids) for (const fn of this.dueListeners) fn(id);
    this.store.notifyDue?.(ids).catch((e) => this.emit({ type: 'error', error: `notifying other processes: ${e instanceof Error ? e.message : String(e)}` }));
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

  async requireCadence(id: string): Promise<CadenceRow> {
    if (typeof id !== 'string') throw new CadenzaError('unknown_cadence', 'D4', 'cadence id must be a string');
    const row = await this.store.getCadence(id);
    if (!row) throw new CadenzaError('unknown_cadence', 'D4', `unknown cadence "${id}"`);
    return row;
  }

  async requireRecord(module: string, id: string): Promise<RecordSnapshot> {
    const rec = await this.store.getRecord(module, id);
    if (!rec) throw new CadenzaError('unknown_record', 'D4', `unknown ${module} record "${id}"`);
    return rec;
  }

  /** D4: a record needs a string or number id and an object body of bounded size. */
  checkRecord(module: string, input: unknown): RecordSnapshot {
    if (typeof module !== 'string' || !module) throw new CadenzaError('invalid_record', 'D4', 'module must be a non-empty string');
    if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new CadenzaError('invalid_record', 'D4', 'record must be a JSON object');
    const data = input as Record<string, unknown>;
    const id = data.id;
    if ((typeof id !== 'string' || !id.trim()) && typeof id !== 'number') throw new CadenzaError('invalid_record', 'D4', 'record.id is required (a non-empty string or a number)');
    const problem = recordIdProblem(String(id));
    if (problem) throw new CadenzaError('invalid_record', 'D4', problem);
    // Depth and size first: a record nested thousands deep would overflow JSON.stringify itself.
    const shape = shapeProblem(data, 'record');
    if (shape) throw new CadenzaError('invalid_record', 'D4', `${shape.field}: ${shape.message}`);
    const size = Buffer.byteLength(JSON.stringify(data));
    if (size > this.opts.maxRecordBytes) throw new CadenzaError('payload_too_large', 'D4', `record ${id} is ${size} bytes (limit ${this.opts.maxRecordBytes})`);
    return { id: String(id), module, data, unsubscribed: data.Email_Opt_Out === true };
  }

  /**
   * Writes snapshots, keeping an unsubscribe (F8) the caller's copy of the record may not know about.
   * Here rather than in records.ts because enrolling records given whole saves them too.
   */
  async saveRecords(recs: RecordSnapshot[]): Promise<RecordSnapshot[]> {
    if (!recs.length) return [];
    const prev = new Map((await this.store.getRecords(recs.map((r) => ({ module: r.module, id: r.id })))).map((r) => [r.id, r]));
    const snapshots = recs.map((r) => ({ ...r, unsubscribed: r.unsubscribed || !!prev.get(r.id)?.unsubscribed }));
    await this.store.putRecords(snapshots, this.clock.now());
    return snapshots;
  }

  async eachRecord(module: string, fn: (r: RecordSnapshot) => Promise<unknown>): Promise<void> {
    await this.eachRecordPage(module, async (page) => {
      for (const r of page) await fn(r);
    });
  }

  async eachRecordPage(module: string, fn: (page: RecordSnapshot[]) => Promise<unknown>): Promise<void> {
    let after: string | null = null;
    for (;;) {
      const page = await this.store.listRecords(module, after, PAGE);
      await fn(page);
      if (page.length < PAGE) return;
      after = page[page.length - 1].id;
    }
  }

  async eachEnrollment(cadenceId: string, status: Enrollment['status'], fn: (e: StoredEnrollment) => Promise<unknown>): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listEnrollments({ cadenceId, status, after, limit: PAGE });
      for (const e of page) await fn(e);
      if (page.length < PAGE) return;
      after = page[page.length - 1].enrollment.id;
    }
  }

  /** An audit row for what happened outside any one step (a cadence edited, a key created, a record unsubscribed). */
  async audit(a: { cadenceId?: string; enrollmentId?: string; recordId?: string; actor: Actor; event: string; reason: string; data?: Record<string, unknown> }): Promise<void> {
    await this.store.addAudit([{ at: this.clock.now(), cadenceId: a.cadenceId ?? null, enrollmentId: a.enrollmentId ?? null, recordId: a.recordId ?? null,
      actor: actorId(a.actor), event: a.event, reason: a.reason, data: a.data ?? null }]);
  }
}

/** Splits a list into consecutive runs without a repeated key, so a batch keeps one-by-one order semantics. */
export function uniqueRuns<T>(items: readonly T[], key: (x: T) => string): T[][] {
  const runs: T[][] = [];
  let seen = new Set<string>();
  for (const x of items) {
    if (!runs.length || seen.has(key(x))) (runs.push([]), (seen = new Set()));
    runs[runs.length - 1].push(x);
    seen.add(key(x));
  }
  return runs;
}

/** The record id an answer names for an input that was refused before it became a record. */
export function recordIdOf(item: unknown): string {
  if (typeof item === 'object' && item !== null) return 'id' in item ? String((item as { id: unknown }).id) : '(missing id)';
  return String(item);
}

/** Whether a commit leaves work for a scheduler now: a timer already due, an action nobody took, a retry. */
function dueNow(c: Commit, now: number): boolean {
  return (c.timer != null && c.timer <= now) || (c.outbox.length > 0 && !c.handOffUntil) || !!c.outboxChanges?.some((ch) => ch.op === 'requeue');
}

/** The options that were given a value. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
