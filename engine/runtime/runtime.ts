// The runtime: everything with I/O around the pure machine, behind one class hosts hold. Each change is
// read -> transition -> one store commit (state + timer + outbox + audit) -> dispatch from the outbox.
// A commit that finds the enrollment changed underneath it is retried from a fresh read, so several
// workers may share one store without ever running a follow-up twice (D2).
//
// This file is the facade: every method says what it does and hands over to where it is done.
//   core.ts        store, clock, options, caches, listeners; shared reads, paging, audit
//   step.ts        the one step pipeline (apply one enrollment; stepMany for N)
//   cadences.ts    create, edit, clone, publish, deactivate, activate, deploy
//   records.ts     record snapshots and what a change sets off
//   enrollment.ts  enroll (one way in for all callers), re-enroll, retry, un-enroll
//   outcomes.ts    outcomes and replies
//   api-keys.ts    API keys and signed links
//   scheduler.ts   claim, hand off, acknowledge, retry; the loop (dispatcher.ts performs hand-offs)
//   ../report/     reads, reports and the audit log
import { randomBytes } from 'node:crypto';
import type { Criteria } from '../criteria/criteria';
import { actionKey, zoneOf } from '../machine/machine';
import type { Enrollment } from '../machine/types';
import type { InboundMessage } from '../model/outcomes';
import type { CadenceDefinition } from '../model/types';
import * as reports from '../report/reports';
import type { AuditRow, CadenceRow, Store } from '../store/store';
import * as apiKeys from './api-keys';
import * as cadences from './cadences';
import type { Clock } from './clock';
import { Core } from './core';
import { CannotRunError } from './dispatcher';
import * as enrollment from './enrollment';
import * as outcomes from './outcomes';
import { AUTOMATION, type Actor } from './permissions';
import * as records from './records';
import { Scheduler } from './scheduler';
import type { DeliveryPolicy } from '../machine/delivery';
import type {
  BatchDispatchHandler, DeployResult, DispatchHandler, EnrollAnswer, RuntimeEvent, RuntimeOptions, TickScope, UpsertAnswer,
} from './types';

export type {
  BatchDispatchHandler, DeployResult, DispatchedAction, DispatchHandler, EnrollAnswer, RuntimeEvent, RuntimeOptions, TickScope, UpsertAnswer,
} from './types';
export { CannotRunError };

export class Runtime {
  readonly store: Store;
  readonly clock: Clock;
  readonly criteria: Criteria;
  private readonly core: Core;
  private readonly scheduler: Scheduler;

  constructor(options: RuntimeOptions) {
    this.core = new Core(options);
    this.store = this.core.store;
    this.clock = this.core.clock;
    this.criteria = this.core.criteria;
    this.scheduler = new Scheduler(this.core);
  }

  async init(): Promise<this> {
    await this.store.migrate();
    // Links must survive restarts: without a configured secret, the store keeps one.
    if (!this.core.opts.secret) this.core.opts.secret = await this.store.meta('link-secret', randomBytes(32).toString('hex'));
    return this;
  }

  /** The host's performer of due actions. It gets an idempotency key; throwing retries with backoff. */
  onDispatch(handler: DispatchHandler): void {
    this.scheduler.handler = handler;
  }

  /**
   * Like onDispatch, but the host receives each claimed batch whole; all of it is acknowledged or retried
   * together, one batch at a time (a crash re-delivers at most the batch in flight).
   */
  onDispatchBatch(handler: BatchDispatchHandler): void {
    this.scheduler.batchHandler = handler;
  }

  /** Says a failure at an edge (an HTTP request a handler did not expect) to the runtime's error listeners. */
  reportError(error: string): void {
    this.core.emit({ type: 'error', error });
  }

  subscribe(fn: (e: RuntimeEvent) => void): () => void {
    this.core.listeners.add(fn);
    return () => this.core.listeners.delete(fn);
  }

  /** A published version of a cadence (immutable, so cached). */
  async definition(cadenceId: string, version: number): Promise<CadenceDefinition> {
    return this.core.definition(cadenceId, version);
  }

  // Cadences: create, edit, clone, publish, deactivate, deploy (C1-C3, V1-V3): cadences.ts --------------

  async createCadence(input: unknown, actor: Actor): Promise<CadenceRow> {
    return cadences.createCadence(this.core, input, actor);
  }

  /** C2: edits the draft; the active version keeps running until the draft is published. */
  async updateDraft(id: string, input: unknown, actor: Actor): Promise<CadenceRow> {
    return cadences.updateDraft(this.core, id, input, actor);
  }

  /** C1: clone within the module only. */
  async cloneCadence(id: string, newId: string, actor: Actor, module?: string): Promise<CadenceRow> {
    return cadences.cloneCadence(this.core, id, newId, actor, module);
  }

  /** E2: how many known records the draft's view would enroll now ("review your custom view count"). */
  async previewEnrollment(id: string, actor: Actor = AUTOMATION): Promise<{ matching: number; skippedByExit: number; alreadyEnrolled: number }> {
    return cadences.previewEnrollment(this.core, id, actor);
  }

  /** C2, V1, V2: the draft becomes a new immutable version; enrollments waiting on an edited follow-up stop. */
  async publish(id: string, actor: Actor): Promise<{ version: number; stopped: number; enrolled: number; warnings?: string[] }> {
    return cadences.publish(this.core, id, actor);
  }

  /** V3: halts every scheduled action of the cadence; un-enrollment still happens while inactive (U7). */
  async deactivate(id: string, actor: Actor): Promise<void> {
    return cadences.deactivate(this.core, id, actor);
  }

  /** V3: halted actions never run later; newly matching records enroll again. */
  async activate(id: string, actor: Actor): Promise<{ enrolled: number }> {
    return cadences.activate(this.core, id, actor);
  }

  /**
   * What a host does on deploy/activation: make the store match a compiled definition. New -> created
   * and published; changed -> a new version (V1, V2); unchanged but inactive -> activated; else nothing.
   */
  async deploy(input: unknown, actor: Actor): Promise<DeployResult> {
    return cadences.deploy(this.core, input, actor);
  }

  /** Active enrollments of a cadence, for host status displays. */
  async countActive(cadenceId: string): Promise<number> {
    return cadences.countActive(this.core, cadenceId);
  }

  // Records (E2, E7, E8, F8): records.ts ----------------------------------------------------------------

  /** Saves the latest snapshot of a record and reacts: un-enroll on criteria (U2, U3), enroll into views (E2). */
  async upsertRecord(module: string, input: unknown, actor: Actor = AUTOMATION): Promise<EnrollAnswer[]> {
    return records.upsertRecord(this.core, module, input, actor);
  }

  /**
   * Many records at once (an import, an n8n batch, a page of E7 re-evaluation): one read and one write
   * of the snapshots, one read of their enrollments, and per view cadence one set-based commit of the
   * enrollments they start. Each record answers on its own; a bad one (D4) is refused, the rest go on.
   */
  async upsertRecords(module: string, inputs: readonly unknown[], actor: Actor = AUTOMATION): Promise<UpsertAnswer[]> {
    return records.upsertRecords(this.core, module, inputs, actor);
  }

  /** F8: no more emails from any cadence; calls and tasks continue. */
  async unsubscribe(module: string, id: string, actor: Actor = AUTOMATION): Promise<void> {
    return records.unsubscribe(this.core, module, id, actor);
  }

  /** E8: a converted lead leaves all its cadences. */
  async convertRecord(module: string, id: string, actor: Actor = AUTOMATION): Promise<number> {
    return records.convertRecord(this.core, module, id, actor);
  }

  // Enrollment (E1, E3, E9, R1-R5, U5, D6): enrollment.ts -----------------------------------------------

  /** E1: one record or many; each gets an answer. Records may be given whole (they are saved first) or by id. */
  async enroll(cadenceId: string, records: readonly unknown[], actor: Actor): Promise<EnrollAnswer[]> {
    return enrollment.enroll(this.core, cadenceId, records, actor);
  }

  /** R1-R5: resume where it stopped, or restart from the first follow-up, on the active version. */
  async reenroll(cadenceId: string, recordId: string, mode: 'resume' | 'restart', actor: Actor): Promise<EnrollAnswer> {
    return enrollment.reenroll(this.core, cadenceId, recordId, mode, actor);
  }

  /**
   * D6: a failed enrollment runs just its failed step again, under the same key (a host that already
   * performed it recognises the key). R3's restart from the first follow-up stays available.
   */
  async retry(cadenceId: string, recordId: string, actor: Actor): Promise<EnrollAnswer> {
    return enrollment.retry(this.core, cadenceId, recordId, actor);
  }

  /** U5: a user un-enrolls a record; every scheduled action of it is cancelled (U8). */
  async unenroll(cadenceId: string, recordId: string, actor: Actor, reason = 'un-enrolled manually (U5)'): Promise<Enrollment> {
    return enrollment.unenroll(this.core, cadenceId, recordId, actor, reason);
  }

  // Outcomes (F2, F3, F5, U1, U10, U11, D3): outcomes.ts ------------------------------------------------

  /**
   * Records a response to a dispatched follow-up, by its idempotency key. A reply message, when given,
   * is classified first, so an out-of-office becomes `auto-replied` (U10).
   */
  async recordOutcome(input: { key: string; outcome: string; message?: InboundMessage }, actor: Actor = AUTOMATION): Promise<{ outcome: string; applied: boolean }> {
    return outcomes.recordOutcome(this.core, input, actor);
  }

  /**
   * A reply as it arrives by mail: its In-Reply-To/References lead to the follow-up it answers
   * (our Message-IDs carry the signed key); automatic replies become `auto-replied` (U10).
   */
  async recordReply(message: InboundMessage & { inReplyTo?: unknown; references?: unknown; from?: string }, actor: Actor = AUTOMATION): Promise<{ key: string; outcome: string; applied: boolean } | null> {
    return outcomes.recordReply(this.core, message, actor);
  }

  // API keys and signed links (P1): api-keys.ts ---------------------------------------------------------

  /** P1: a new API key with scopes; the key is shown once, only its hash is stored. */
  async createApiKey(name: string, scopes: readonly string[], actor: Actor): Promise<{ id: string; key: string; scopes: string[] }> {
    return apiKeys.createApiKey(this.core, name, scopes, actor);
  }

  /** The actor an API key stands for, with its scopes as permissions; undefined for an unknown or revoked key. */
  /** P1: the API keys, without their hashes (manage). */
  async listApiKeys(actor: Actor) {
    return apiKeys.listApiKeys(this.core, actor);
  }

  /** P1: revokes an API key by id; it stops working at once (manage). */
  async revokeApiKey(id: string, actor: Actor): Promise<void> {
    return apiKeys.revokeApiKey(this.core, id, actor);
  }

  async authenticate(key: unknown): Promise<Exclude<Actor, string> | undefined> {
    return apiKeys.authenticate(this.core, key);
  }

  /** Verifies a tracking or unsubscribe token signed by this runtime. */
  verifyLink(token: string): Record<string, string> | null {
    return apiKeys.verifyLink(this.core, token);
  }

  // The scheduler and the hand-off (D1, D2, D5, D6): scheduler.ts ---------------------------------------

  /** D6: the retry policy in force (backoff, hold time, jitter), as configured by `retry`. */
  get deliveryPolicy(): Readonly<DeliveryPolicy> {
    return this.scheduler.delivery;
  }

  /**
   * One pass: fire due timers, hand off what is queued, and wait for those hand-offs to be confirmed or
   * to fail (at most the hand-off time limit). Tests, the simulator and worker processes call it;
   * `start()` runs passes that do not wait, so a slow performer never holds back timers.
   */
  async tick(scope: TickScope = {}): Promise<{ timers: number; dispatched: number; failed: number }> {
    return this.scheduler.tick(scope);
  }

  /**
   * For a handler whose performer answers later, elsewhere in the host (a Node-RED flow's Complete and
   * Catch nodes): return this from the handler, and the hand-off ends when confirmDelivery(key) is
   * called — or fails as a time-out after the hand-off time limit and is retried under the same key.
   */
  awaitConfirmation(key: string, attempt?: number): Promise<void> {
    return this.scheduler.awaitConfirmation(key, attempt);
  }

  /**
   * D5: the performer's verdict on an action, by its key (the idempotency key the host received). A
   * failure is transient unless `permanent` (D6). A verdict for a hand-off no longer waiting here (the
   * process restarted, it timed out) is recorded all the same. With `attempt` (the action's, as handed
   * off), a verdict on an older hand-off of the key than the one in flight is ignored and said.
   */
  async confirmDelivery(key: string, error?: { message: string; permanent?: boolean }, attempt?: number): Promise<{ applied: boolean }> {
    return this.scheduler.confirmDelivery(key, error, attempt);
  }

  /**
   * Runs the scheduler against the real clock, one timer for the whole loop (never one per record).
   * Passes do not wait for hand-offs: those run beside it, at bounded concurrency, and a confirmed one
   * wakes the loop at once (its next step may be due now). `scope` is read before each pass.
   */
  start(intervalMs = 1000, scope: () => TickScope = () => ({})): void {
    return this.scheduler.start(intervalMs, scope);
  }

  /** Stops the loop; waits for hand-offs in flight up to `graceMs` (default `stopGraceMs`, 5 s) so their verdicts are written. */
  async stop(graceMs?: number): Promise<void> {
    return this.scheduler.stop(graceMs);
  }

  /** Virtual time: moves a VirtualClock from due time to due time until `until`, ticking at each. */
  async runUntil(until: number, clock: { set(t: number): void; now(): number }, scope: TickScope = {}): Promise<void> {
    return this.scheduler.runUntil(until, clock, scope);
  }

  // Reads and reports (A1, A2, A3, U9, P2): engine/report/reports.ts ------------------------------------

  /** The cadences, with what is published and what is drafted (P2: view). */
  async listCadences(actor: Actor = AUTOMATION, module?: string): Promise<CadenceRow[]> {
    return reports.listCadences(this.core, actor, module);
  }

  async getCadence(id: string, actor: Actor = AUTOMATION): Promise<{ cadence: CadenceRow; definition: CadenceDefinition | null }> {
    return reports.getCadence(this.core, id, actor);
  }

  async listEnrollments(cadenceId: string, filter: { status?: Enrollment['status']; after?: string; limit?: number | string }, actor: Actor = AUTOMATION): Promise<Enrollment[]> {
    return reports.listEnrollments(this.core, cadenceId, filter, actor);
  }

  async getEnrollment(cadenceId: string, recordId: string): Promise<Enrollment | undefined> {
    return reports.getEnrollment(this.core, cadenceId, recordId);
  }

  async cadenceReport(id: string, actor: Actor = AUTOMATION) {
    return reports.cadenceReport(this.core, id, actor);
  }

  /** A2: every cadence a record is or was in. */
  async recordReport(recordId: string, actor: Actor = AUTOMATION) {
    return reports.recordReport(this.core, recordId, actor);
  }

  /** A3 + U9: the ordered log of inputs and decisions of one enrollment: its newest page (see whyPage). */
  async why(enrollmentId: string, actor: Actor = AUTOMATION): Promise<AuditRow[]> {
    return (await reports.why(this.core, enrollmentId, actor)).log;
  }

  /** The why-log a page at a time: `next` (a cursor) reads on; by default the newest page first. */
  async whyPage(enrollmentId: string, actor: Actor = AUTOMATION, page: reports.AuditPageQuery = {}): Promise<reports.AuditPage> {
    return reports.why(this.core, enrollmentId, actor, page);
  }

  /** U9: the newest page of a record's or a cadence's audit (see auditPage). */
  async auditLog(filter: { recordId?: string; cadenceId?: string }, actor: Actor = AUTOMATION): Promise<AuditRow[]> {
    return (await reports.auditLog(this.core, filter, actor)).log;
  }

  async auditPage(filter: { recordId?: string; cadenceId?: string }, actor: Actor = AUTOMATION, page: reports.AuditPageQuery = {}): Promise<reports.AuditPage> {
    return reports.auditLog(this.core, filter, actor, page);
  }
}

export { actionKey, zoneOf };
