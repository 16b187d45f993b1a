// Hand-offs to the host (D5, D6): bounded concurrency, a time limit per hand-off, failures classified.
// It performs and reports; it decides nothing — the machine does (engine/machine/delivery.ts for when
// to retry, the `delivered` / `deliveryFailed` events for what the enrollment does).
import type { Failure } from '../machine/delivery';
import type { OutboxRow } from '../store/store';

/**
 * Thrown by a host handler when the follow-up can never run (bad address, deleted activity): the step
 * fails at once (F9, D6). Any error with `permanent: true` counts the same; every other error, a
 * time-out included, is transient and retried under the same key.
 */
export class CannotRunError extends Error {
  readonly permanent = true;
  constructor(message: string) {
    super(message);
    this.name = 'CannotRunError';
  }
}

export type HandOffResult = { row: OutboxRow; failure: Failure | null };

export interface DispatcherOptions {
  /** Hand-offs in flight at once (default 16): one slow performer holds one slot, not the queue. */
  concurrency: number;
  /** A hand-off not settled within this time is a transient failure (default 30 s). */
  timeoutMs: number;
}

/**
 * An SMTP refusal of this one recipient that retrying cannot change (RFC 3463): the mailbox or its
 * domain does not exist (5.1.1, 5.1.2, 5.1.10), the address is malformed (5.1.3) or moved (5.1.6), the
 * mailbox is disabled (5.2.1) — as "550 5.1.1 mailbox does not exist". Mail nodes report it only in
 * their error text, so it is read there. Everything else stays transient and is retried (D6): a relay
 * refusing our login (535 5.7.8), our sender (5.1.8) or relaying (5.7.1) would refuse every email, and
 * is fixed on our side, not by failing the enrollments.
 */
const SMTP_PERMANENT = /\b5\d\d[ -]5\.(?:1\.(?:1|2|3|6|10)|2\.1)\b/;
export const permanentRefusal = (message: string): boolean => SMTP_PERMANENT.test(message);

export function classify(e: unknown): Failure {
  const message = e instanceof Error ? e.message : String(e);
  const flagged = e instanceof CannotRunError || (typeof e === 'object' && e !== null && (e as { permanent?: unknown }).permanent === true);
  const after = typeof e === 'object' && e !== null ? (e as { retryAfterMs?: unknown }).retryAfterMs : undefined;
  return { message: message || 'failed', permanent: flagged || permanentRefusal(message), ...(typeof after === 'number' && after > 0 ? { retryAfterMs: after } : {}) };
}

export class Dispatcher {
  private running = 0;
  private readonly queue: (() => void)[] = [];
  private readonly tasks = new Set<Promise<void>>();

  constructor(
    private readonly opts: DispatcherOptions,
    /** One hand-off: a single action, or a batch the host takes whole. */
    private readonly perform: (rows: OutboxRow[]) => Promise<unknown>,
    /** What came of it, for the runtime to turn into machine events. Must not throw. */
    private readonly report: (results: HandOffResult[]) => Promise<void>,
    /** Wall-clock time for the lease check (I/O coordination, not cadence time). */
    private readonly wallNow: () => number = Date.now,
  ) {}

  /** Nothing in flight and nothing waiting for a slot. */
  idleNow(): boolean {
    return this.running === 0 && this.queue.length === 0;
  }

  /** Slots free right now: how many rows a claim should take. */
  free(): number {
    return Math.max(0, this.opts.concurrency - this.running - this.queue.length);
  }

  /**
   * Hands off each group (just leased for `leaseMs`) as a slot frees up; resolves when every group has
   * been performed and reported. A group that waited here so long that its lease would end before its
   * hand-off could time out is left alone: a later claim takes it once the lease ends, so waiting here
   * never makes two processes hand off one row at once.
   */
  handOff(groups: OutboxRow[][], leaseMs: number): Promise<void> {
    const leasedAt = this.wallNow();
    const work = Promise.all(groups.filter((g) => g.length).map((g) => this.one(g, leasedAt + leaseMs))).then(() => undefined);
    this.tasks.add(work);
    void work.finally(() => this.tasks.delete(work));
    return work;
  }

  /** Resolves when nothing is in flight (stop, tests). */
  async idle(): Promise<void> {
    while (this.tasks.size) await Promise.allSettled([...this.tasks]);
  }

  private async one(rows: OutboxRow[], leaseEnds: number): Promise<void> {
    await this.slot();
    let failure: Failure | null = null;
    try {
      if (this.wallNow() + this.opts.timeoutMs > leaseEnds) return;
      try {
        await withTimeout(this.perform(rows), this.opts.timeoutMs);
      } catch (e) {
        failure = classify(e);
      }
    } finally {
      // The slot is the performer's: the next hand-off starts while this one's verdict is written.
      this.running--;
      this.queue.shift()?.();
    }
    this.results.push(...rows.map((row) => ({ row, failure })));
    await this.flush();
  }

  private readonly results: HandOffResult[] = [];
  private flushing: Promise<void> | null = null;

  /**
   * Verdicts are written in batches: whatever came in while the previous batch was being written goes
   * in the next, so sixteen hand-offs finishing together cost one commit, not sixteen.
   */
  private async flush(): Promise<void> {
    // Loops because a verdict can arrive just as a writer finishes; it never waits unwritten.
    while (this.results.length) {
      this.flushing ??= (async () => {
        while (this.results.length) await this.report(this.results.splice(0));
      })().finally(() => (this.flushing = null));
      await this.flushing;
    }
  }

  private slot(): Promise<void> {
    if (this.running < this.opts.concurrency) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(() => (this.running++, resolve())));
  }
}

function withTimeout(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(ms / 1000)} s (timed out)`)), ms);
    timer.unref?.();
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}
