// The scheduler and the hand-off (D1, D2, D5, D6): claims due timers and steps their enrollments in
// batches (step.ts), claims queued actions from the outbox and hands them to the host through the
// Dispatcher (bounded concurrency, a time limit each), turns what came of each hand-off into machine
// events (delivered, or a failure the delivery policy retries or gives up on), and runs the loop.
import { afterFailure, DEFAULT_DELIVERY, type DeliveryPolicy } from '../machine/delivery';
import type { MachineEvent } from '../machine/types';
import { CadenzaError } from '../model/errors';
import type { OutboxRow, TimerRow } from '../store/store';
import type { Core } from './core';
import { Dispatcher, permanentRefusal, type HandOffResult } from './dispatcher';
import { engineKey } from './keys';
import { AUTOMATION } from './permissions';
import { reactMany } from './records';
import { enrollMatching } from './cadences';
import { actionLeaseMs, apply, stepDue, stepMany, type Written } from './step';
import type { BatchDispatchHandler, DispatchedAction, DispatchHandler, TickScope } from './types';

export class Scheduler {
  handler: DispatchHandler | null = null;
  batchHandler: BatchDispatchHandler | null = null;
  private loop: NodeJS.Timeout | null = null;
  private ticking: Promise<unknown> | null = null;
  private woken = false;
  private wake: () => void = () => undefined;
  /** Hand-offs confirmed and failed since start (tick() reports the difference). */
  private readonly counts = { delivered: 0, failed: 0 };
  /** Keys whose latest hand-off in this process its performer reported failed, with that attempt (see confirmDelivery). */
  private readonly failedHandOffs = new Map<string, number | undefined>();
  /** Hand-offs of this process waiting for their performer's verdict, by key (see awaitConfirmation). */
  private readonly confirmations = new Map<string, { attempt?: number; resolve: () => void; reject: (e: Error) => void }>();
  readonly delivery: Readonly<DeliveryPolicy>;
  /** What this process wrote for the enrollments whose actions it handed off: their verdicts' steps start from it. */
  private readonly written: Written = new Map();
  private readonly dispatcher: Dispatcher;

  constructor(private readonly core: Core) {
    const { opts } = core;
    this.delivery = { ...DEFAULT_DELIVERY, ...opts.retry };
    // A hand-off must be able to time out well inside its lease, or another worker could take it meanwhile.
    const timeoutMs = Math.min(opts.handOffTimeoutMs ?? 30_000, Math.floor(actionLeaseMs(core) / 2));
    this.dispatcher = new Dispatcher({ concurrency: Math.max(1, opts.concurrency ?? 16), timeoutMs }, (rows) => this.perform(rows), (r) => this.reported(r));
  }

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

  private async pass(scope: TickScope, wait: boolean): Promise<number> {
    if (scope.cadences && !scope.cadences.length) return 0;
    const now = this.core.clock.now();
    const handOffs: Promise<void>[] = [];
    let timers = 0;
    // A lane claims and steps batches until a claim comes back short. Stores that claim by row locks on
    // a pool of connections run two lanes (Store.batchLanes): one plans a batch in JavaScript while the
    // other's is being written, so neither the process nor the database waits on the other.
    const lane = async () => {
      for (;;) {
        const lease = now + this.core.opts.leaseMs;
        // The cadences' own timers first (U4's un-enrollment wins over a follow-up due at once, U6), then
        // a batch of the enrollments whose timer is due, then one by one whatever the batch left.
        const cadenceTimers = await this.core.store.claimTimers(now, this.core.opts.batchSize, lease, scope.cadences);
        await this.fireEach(cadenceTimers);
        const batch = await stepDue(this.core, now, this.core.opts.batchSize, lease, scope.cadences, (n) => this.canHandOff(n));
        timers += cadenceTimers.length + batch.due;
        if (this.written.size > 50_000) this.written.clear(); // only a bound: hand-offs that never report (lease ended) leave theirs
        for (const [id, w] of batch.written) this.written.set(id, w);
        if (batch.queued.length) handOffs.push(this.handOff(batch.queued));
        for (const r of batch.rest) {
          await this.fireEnrollment(r.id, r.leasedUntil).catch((e) => this.core.emit({ type: 'error', error: `enrollment ${r.id}: ${e instanceof Error ? e.message : String(e)}` }));
        }
        if (cadenceTimers.length < this.core.opts.batchSize && batch.due < this.core.opts.batchSize) break;
      }
    };
    await Promise.all(Array.from({ length: this.core.store.batchLanes ?? 1 }, lane));
    // The outbox: actions queued by others or left for want of a free slot, retries whose time has come,
    // leases of dead workers ended. A waiting pass goes on as slots free up, until none is left to claim.
    for (;;) {
      let drained = true;
      for (let free = this.slots(); free > 0 && (this.handler || this.batchHandler); free = this.slots()) {
        const t = this.core.clock.now();
        // A slot takes one action, or a whole batch when the host takes batches.
        const limit = this.batchHandler ? this.core.opts.batchSize : Math.min(free, this.core.opts.batchSize);
        const rows = await this.core.store.claimOutbox(t, limit, t + actionLeaseMs(this.core), scope.cadences);
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
        this.core.emit({ type: 'error', error: `timer ${t.id}: ${e instanceof Error ? e.message : String(e)}` });
      }
    }
  }

  /** Leased rows to the host: one hand-off per row, or the whole batch to a batch handler. */
  private handOff(rows: OutboxRow[]): Promise<void> {
    return this.dispatcher.handOff(this.batchHandler ? [rows] : rows.map((r) => [r]), actionLeaseMs(this.core));
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
      const now = this.core.clock.now();
      const delivered = results.filter((r) => !r.failure).map((r) => r.row);
      const verdicts: { row: OutboxRow; event: MachineEvent }[] = [];
      for (const { row, failure } of results) {
        if (!failure) continue;
        // A hand-off that timed out stops waiting here, so its performer's late verdict is read from the
        // outbox: a late "delivered" then settles the action before its retry goes out (no second send).
        this.confirmations.get(row.key)?.reject(new Error(failure.message));
        this.counts.failed++;
        this.core.emit({ type: 'dispatchFailed', key: row.key, nodeId: row.nodeId, error: failure.message });
        const d = afterFailure(this.delivery, row.attempts, row.createdAt, now, failure, Math.random());
        // The policy says when; the machine says whether the enrollment still wants it (U8, F8).
        verdicts.push({ row, event: 'giveUp' in d
          ? { type: 'deliveryFailed', key: row.key, reason: d.giveUp }
          : { type: 'handOffFailed', key: row.key, retryAt: d.retryAt, error: failure.message, reason: d.reason, attempt: row.attempts } });
      }
      for (const row of delivered) (this.counts.delivered++, this.core.emit({ type: 'dispatched', key: row.key, nodeId: row.nodeId }));
      await this.settle([
        ...delivered.map((row) => ({ id: row.enrollmentId, event: { type: 'delivered', key: row.key } as MachineEvent })),
        ...verdicts.map((v) => ({ id: v.row.enrollmentId, event: v.event })),
      ]);
      this.nudge();
    } catch (e) {
      // A report that could not be written: the rows stay leased and are handed off again when the lease ends (same key).
      this.core.emit({ type: 'error', error: `recording deliveries: ${e instanceof Error ? e.message : String(e)}` });
    }
  }

  /** Delivery events for many enrollments in one commit; whatever conflicts goes one by one. */
  private async settle(items: { id: string; event: MachineEvent }[]): Promise<void> {
    if (!items.length) return;
    const written: Written = new Map();
    for (const { id } of items) {
      const w = this.written.get(id);
      if (w) (written.set(id, w), this.written.delete(id));
    }
    const { rest } = await stepMany(this.core, items, AUTOMATION, undefined, written);
    for (const r of rest) await apply(this.core, r.id, r.event, AUTOMATION).catch((e) => this.core.emit({ type: 'error', error: String(e) }));
  }

  /**
   * An enrollment the batch left (leased until `leasedUntil`: unusual, or another worker moved it). A
   * timer that decided nothing (stale) is given back as the state wants it, never left leased — and
   * never over a timer a newer commit armed. One that fails stays leased and is tried again then.
   */
  private async fireEnrollment(id: string, leasedUntil: number): Promise<void> {
    if (!(await this.core.store.getEnrollment(id))) return;
    const r = await apply(this.core, id, { type: 'timer' }, AUTOMATION);
    if (r.state && !r.effects.length) await this.core.store.releaseDue(id, leasedUntil, r.state.status === 'active' ? r.state.dueAt : null);
  }

  /** A cadence's own timer: U4's un-enroll date, E7's re-check. */
  private async fire(t: TimerRow): Promise<void> {
    const { id: timerId, kind, cadenceId } = t;
    const row = await this.core.store.getCadence(cadenceId);
    if (!row?.activeVersion) return this.core.store.deleteTimer(timerId);
    const def = await this.core.definition(cadenceId, row.activeVersion);
    if (kind === 'unenrollDate') {
      // U4 + U7: runs whether or not the cadence is active.
      await this.core.store.deleteTimer(timerId);
      await this.core.eachEnrollment(cadenceId, 'active', (e) => apply(this.core, e.enrollment.id, { type: 'unenroll', by: AUTOMATION, reason: `un-enroll date ${def.unenroll!.onDate} (U4)` }, AUTOMATION));
    } else if (kind === 'backfill') {
      // E2, D1: a publish's enrollment of the module that did not finish (the process stopped): done now.
      if (row.status === 'active') await enrollMatching(this.core, def);
      else await this.core.store.deleteTimer(timerId);
    } else if (kind === 'viewRecheck') {
      // E7: time-dependent criteria are re-read as the clock moves, not only when a record changes.
      await this.core.store.setTimer({ id: timerId, kind: 'viewRecheck', cadenceId, dueAt: this.core.clock.now() + this.core.opts.recheckMs, priority: 2 });
      if (row.status !== 'active') return;
      await this.core.eachRecordPage(def.module, (page) => reactMany(this.core, page, AUTOMATION));
    }
  }

  /**
   * For a handler whose performer answers later, elsewhere in the host (a Node-RED flow's Complete and
   * Catch nodes): return this from the handler, and the hand-off ends when confirmDelivery(key) is
   * called — or fails as a time-out after the hand-off time limit and is retried under the same key.
   */
  awaitConfirmation(key: string, attempt?: number): Promise<void> {
    this.failedHandOffs.delete(key); // a new hand-off: its own verdict decides
    return new Promise<void>((resolve, reject) => {
      this.confirmations.get(key)?.reject(new Error('handed off again'));
      const done = () => this.confirmations.delete(key);
      this.confirmations.set(key, { attempt, resolve: () => (done(), resolve()), reject: (e) => (done(), reject(e)) });
    });
  }

  /**
   * D5: the performer's verdict on an action, by its key (the idempotency key the host received). A
   * failure is transient unless `permanent` (D6). A verdict for a hand-off no longer waiting here (the
   * process restarted, it timed out) is recorded all the same. `attempt` says which hand-off the verdict
   * is about (the action's `attempt`): one about an older hand-off than the one in flight is ignored.
   */
  async confirmDelivery(key: string, error?: { message: string; permanent?: boolean }, attempt?: number): Promise<{ applied: boolean }> {
    if (typeof key !== 'string' || !key) throw new CadenzaError('invalid_outcome', 'D4', 'the action\'s key (msg.cadenza.key) is required to confirm a delivery');
    key = engineKey(key);
    const message = error?.message || 'the performer failed';
    const failure = error ? Object.assign(new Error(message), { permanent: !!error.permanent || permanentRefusal(message) }) : null;
    const waiting = this.confirmations.get(key);
    const ignore = (why: string) => (this.core.emit({ type: 'error', error: `${key}: ${error ? 'a failure' : '"delivered"'} ${why}; ignored (D5, D6)` }), { applied: false });
    // A late verdict on a hand-off that timed out and was handed over again must not decide the new one.
    if (attempt !== undefined && waiting?.attempt !== undefined && attempt < waiting.attempt) return ignore(`for attempt ${attempt} came while attempt ${waiting.attempt} is in flight`);
    if (failure) {
      if (this.failedHandOffs.size > 10_000) this.failedHandOffs.clear(); // only a bound
      this.failedHandOffs.set(key, attempt ?? waiting?.attempt);
    } else if (!waiting && this.failedHandOffs.has(key)) {
      // Node-RED's node.error(err, msg) idiom fires Catch and then Complete for one attempt: the
      // failure stands and the action is retried under its key; the "delivered" is said, not applied.
      const failed = this.failedHandOffs.get(key);
      if (attempt === undefined || failed === undefined || failed === attempt) return ignore('after its performer reported this hand-off failed: it is retried');
    }
    if (waiting) {
      if (failure) waiting.reject(failure);
      else waiting.resolve();
      return { applied: true };
    }
    const row = await this.core.store.getOutbox(key);
    if (!row) throw new CadenzaError('unknown_action', 'D4', `no dispatched action has key "${key}"`);
    if (row.status !== 'pending') return { applied: false };
    if (attempt !== undefined && row.attempts > attempt) return ignore(`for attempt ${attempt} came after attempt ${row.attempts} was handed off`);
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
      this.ticking = this.pass(scope(), false).catch((e) => this.core.emit({ type: 'error', error: String(e) }));
      await this.ticking;
      this.ticking = null;
      if (this.loop) this.loop = setTimeout(run, this.woken ? 0 : intervalMs);
    };
    this.wake = () => {
      if (!this.loop) return;
      this.woken = true; // a pass running now goes again at once when it ends
      if (!this.ticking) (clearTimeout(this.loop), (this.loop = setTimeout(run, 0)));
    };
    // No waiting for the poll: a commit that makes work due now wakes the loop at once, in this process
    // and (PostgreSQL: LISTEN/NOTIFY) in the others. The interval stays as the net for a lost notice.
    const onDue = (cadenceId: string | null) => {
      const only = scope().cadences;
      if (cadenceId === null || !only || only.includes(cadenceId)) this.wake();
    };
    this.core.dueListeners.add(onDue);
    // Said, not thrown: the channel reconnects by itself (with backoff), and the poll covers the gap.
    const channelDown = (e: Error) => this.core.emit({ type: 'error', error: `wake-up channel (LISTEN): ${e.message}; reconnecting, the ${intervalMs} ms poll runs meanwhile` });
    const unsubscribe = this.core.store.subscribeDue?.(onDue, channelDown);
    this.unsubscribe = () => (this.core.dueListeners.delete(onDue), unsubscribe?.());
    this.loop = setTimeout(run, 0);
  }

  private unsubscribe: () => void = () => undefined;

  /** A delivery was recorded: the loop's next pass comes now rather than after the interval. */
  private nudge(): void {
    this.wake();
  }

  async stop(graceMs = this.core.opts.stopGraceMs ?? 5000): Promise<void> {
    this.unsubscribe();
    this.unsubscribe = () => undefined;
    if (this.loop) clearTimeout(this.loop);
    this.loop = null;
    await this.ticking;
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([this.dispatcher.idle(), new Promise<void>((r) => (grace = setTimeout(r, graceMs)))]);
    clearTimeout(grace);
  }

  /** Virtual time: moves a VirtualClock from due time to due time until `until`, ticking at each. */
  async runUntil(until: number, clock: { set(t: number): void; now(): number }, scope: TickScope = {}): Promise<void> {
    for (;;) {
      await this.tick(scope);
      const next = await this.core.store.nextDue(scope.cadences);
      if (next === null || next > until) break;
      clock.set(Math.max(next, clock.now()));
    }
    if (clock.now() < until) clock.set(until);
  }

  /**
   * Whether actions a batch of steps queues now can be written already leased to this process: it has a
   * handler and a free slot for them (one slot per action, or one for the batch a batch handler takes).
   */
  /**
   * Free hand-off slots. A batch handler takes one batch at a time: a batch is one performer call (an
   * execution for many items), and a crash re-delivers at most the batch in flight. For isolation between
   * performers, hosts use onDispatch (one hand-off per action, `concurrency` at once).
   */
  private slots(): number {
    if (!this.batchHandler) return this.dispatcher.free();
    return this.dispatcher.idleNow() ? 1 : 0;
  }

  private canHandOff(_queued: number): boolean {
    // Rows beyond the free slots wait in the dispatcher's queue; one that waits there so long its lease
    // would end before its hand-off could time out is left for a later claim (dispatcher.ts).
    return !!(this.handler || this.batchHandler) && this.slots() > 0;
  }
}
