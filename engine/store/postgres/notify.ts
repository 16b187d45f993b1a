// Cross-process wake-ups on PostgreSQL (issue 15): a commit that makes a step due now sends
// pg_notify inside its own transaction, and every process that LISTENs wakes its scheduler at once
// instead of waiting for the next poll. NOTIFY is delivered only when (and if) the transaction commits,
// so a rolled-back commit wakes nobody. Notifications are a latency hint, never the source of truth:
// the poll stays as the safety net, so one lost while the listener was down costs at most one poll
// interval and never a step (D1).
import pg from 'pg';

/** The channel every Cadenza process listens on unless told otherwise (NOTIFY is per database). */
export const DUE_CHANNEL = 'cadenza_due';

/** Anything that can run a query: a pool, a pool client inside a transaction, a client. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/**
 * What woke the subscriber. `cadenceIds` names the cadences with something due, or is null when any
 * cadence may have something due (a notification without a payload, or the listener just came up and
 * may have missed some while it was down).
 */
export interface DueWake {
  reason: 'notify' | 'listening';
  cadenceIds: ReadonlySet<string> | null;
}
export type DueSubscriber = (wake: DueWake) => void;

export interface DueChannelOptions {
  channel?: string;
  /** Notifications arriving within this many ms make one wake (0: those of one event-loop turn). */
  coalesceMs?: number;
  /** Reconnect delays: doubling from min to max, with jitter so a fleet does not reconnect in step. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * A silently dead connection (a dropped NAT entry, a failed-over server) emits nothing; a cheap
   * query every so often finds it, so the listener never stays deaf for longer than this. 0: off.
   */
  heartbeatMs?: number;
  /** Connection problems, for a log. Messages come from the driver and never carry the password. */
  onError?: (error: Error) => void;
}

/** The listener's application_name in pg_stat_activity. */
export const LISTENER_NAME = 'cadenza-due-listener';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
/** pg_notify's payload limit is 8000 bytes; a cadence id longer than that is sent without a payload. */
const MAX_PAYLOAD = 7999;

function checkChannel(channel: string): string {
  // LISTEN takes an identifier, not a parameter: allow only plain lower-case names (no quoting games).
  if (!IDENTIFIER.test(channel)) throw new Error(`notification channel "${channel}" must be a lower-case SQL identifier`);
  return channel;
}

const payloadOf = (cadenceId?: string) => (cadenceId && Buffer.byteLength(cadenceId) <= MAX_PAYLOAD ? cadenceId : '');

/**
 * Sends the wake-up on `db`. Run it on the client of the transaction that makes the work due: the
 * server delivers it on COMMIT, and drops it on ROLLBACK. Identical notifications of one transaction
 * are folded into one by the server, so calling this once per enrollment costs one per cadence.
 */
export async function notifyDue(db: Queryable, cadenceId?: string, channel: string = DUE_CHANNEL): Promise<void> {
  await db.query(NOTIFY_SQL, [checkChannel(channel), payloadOf(cadenceId)]);
}

/** The statement notifyDue runs, for a caller that batches it with others: $1 the channel, $2 the cadence id or ''. */
export const NOTIFY_SQL = 'SELECT pg_notify($1, $2)';

/**
 * One statement for many cadences ($1 the channel, $2 a text[] of cadence ids): for a batched commit.
 * A CTE would not do: PostgreSQL skips a SELECT in WITH that nothing reads.
 */
export const NOTIFY_MANY_SQL = 'SELECT pg_notify($1, c) FROM unnest($2::text[]) AS c';

/**
 * The listening side: one dedicated connection (LISTEN holds it; a pooled client cannot), kept up for
 * the life of the process and re-established with backoff when it is cut. Subscribers are called at
 * most once per burst, and once each time the listener (re)connects.
 */
export class DueChannel {
  readonly channel: string;
  private readonly subscribers = new Set<DueSubscriber>();
  private client: pg.Client | null = null;
  private closed = false;
  private started = false;
  private up = false;
  private attempt = 0;
  private retry: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private flush: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private pending: { reason: DueWake['reason']; ids: Set<string> | null } | null = null;
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly opts: Required<Omit<DueChannelOptions, 'onError' | 'channel'>> & Pick<DueChannelOptions, 'onError'>;

  constructor(private readonly connectionString: string, options: DueChannelOptions = {}) {
    this.channel = checkChannel(options.channel ?? DUE_CHANNEL);
    this.opts = { coalesceMs: 0, minBackoffMs: 100, maxBackoffMs: 5_000, heartbeatMs: 30_000, ...options };
  }

  /** Calls `fn` on every wake; returns the unsubscribe function. */
  subscribe(fn: DueSubscriber): () => void {
    this.subscribers.add(fn);
    return () => void this.subscribers.delete(fn);
  }

  /** True while LISTEN is in place. */
  get listening(): boolean {
    return this.up;
  }

  /**
   * Connects and listens in the background; never throws (a server that is down is retried with
   * backoff, and the poll covers the gap). Await `ready()` to know when notifications flow.
   */
  start(): this {
    if (!this.started && !this.closed) {
      this.started = true;
      void this.connect();
    }
    return this;
  }

  /** Resolves once LISTEN is in place (at once if it is); rejects if the channel is closed first. */
  ready(): Promise<void> {
    if (this.up) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('the notification channel is closed'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Sends a wake-up on `db` on this channel (see notifyDue). */
  notify(db: Queryable, cadenceId?: string): Promise<void> {
    return notifyDue(db, cadenceId, this.channel);
  }

  /** Stops listening for good: no reconnect, no timer left behind, the connection ended. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.up = false;
    for (const t of [this.retry, this.heartbeat]) if (t) clearTimeout(t);
    this.clearFlush();
    this.retry = this.heartbeat = null;
    this.pending = null;
    this.subscribers.clear();
    for (const w of this.waiters.splice(0)) w.reject(new Error('the notification channel is closed'));
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    // Listeners go on before connect(): pg emits 'error' for a connection lost at any moment, and an
    // 'error' event without a listener kills the process (a past bug took a worker down this way).
    // application_name lets an operator find the listener in pg_stat_activity (and the tests cut it).
    const c = new pg.Client({ connectionString: this.connectionString, connectionTimeoutMillis: 10_000, keepAlive: true, query_timeout: 10_000, application_name: LISTENER_NAME });
    this.client = c;
    c.on('error', (e: Error) => this.lost(c, e));
    c.on('notification', (m) => {
      if (c === this.client && m.channel === this.channel) this.queue('notify', m.payload || null);
    });
    try {
      await c.connect();
      // Only now: while connecting, pg reports a failure through connect()'s promise (which carries the
      // reason), and an 'end' seen first would hide it.
      c.on('end', () => this.lost(c));
      await c.query(`LISTEN ${this.channel}`);
    } catch (e) {
      this.lost(c, e as Error);
      return;
    }
    if (c !== this.client || this.closed) return; // lost or closed while connecting: already handled
    this.up = true;
    this.attempt = 0;
    for (const w of this.waiters.splice(0)) w.resolve();
    this.armHeartbeat(c);
    // Whatever was committed while nobody listened went unheard: one wake makes the loop look now
    // rather than at its next poll. On the first connect it covers commits made before LISTEN began.
    this.queue('listening', null);
  }

  /** The connection `c` failed or ended: drop it and, unless closed, try again after a backoff. */
  private lost(c: pg.Client, error?: Error): void {
    if (c !== this.client || this.closed) return; // an old connection's late events, or ours after close()
    if (error) this.opts.onError?.(error);
    this.client = null;
    this.up = false;
    if (this.heartbeat) clearTimeout(this.heartbeat);
    this.heartbeat = null;
    c.end().catch(() => undefined);
    if (this.closed) return;
    const base = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** this.attempt++);
    this.retry = setTimeout(() => {
      this.retry = null;
      if (!this.closed) void this.connect();
    }, base / 2 + Math.random() * (base / 2));
    this.retry.unref();
  }

  private armHeartbeat(c: pg.Client): void {
    if (!this.opts.heartbeatMs) return;
    this.heartbeat = setTimeout(() => {
      this.heartbeat = null;
      if (c !== this.client) return;
      c.query('SELECT 1').then(() => c === this.client && this.armHeartbeat(c), (e: Error) => this.lost(c, e));
    }, this.opts.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Gathers a burst into one wake: the subscriber only wakes a loop, which reads what is due itself. */
  private queue(reason: DueWake['reason'], cadenceId: string | null): void {
    if (this.closed) return;
    const p = (this.pending ??= { reason, ids: new Set() });
    if (reason === 'listening') p.reason = 'listening';
    if (cadenceId === null) p.ids = null;
    else p.ids?.add(cadenceId);
    if (this.flush) return;
    const run = () => {
      this.flush = null;
      const wake = this.pending;
      this.pending = null;
      if (!wake || this.closed) return;
      for (const fn of [...this.subscribers]) {
        try {
          fn({ reason: wake.reason, cadenceIds: wake.ids });
        } catch (e) {
          // One subscriber's bug must neither silence the others nor the listener.
          this.opts.onError?.(e as Error);
        }
      }
    };
    this.flush = this.opts.coalesceMs > 0 ? setTimeout(run, this.opts.coalesceMs) : setImmediate(run);
  }

  private clearFlush(): void {
    if (!this.flush) return;
    if (this.opts.coalesceMs > 0) clearTimeout(this.flush as NodeJS.Timeout);
    else clearImmediate(this.flush as NodeJS.Immediate);
    this.flush = null;
  }
}
