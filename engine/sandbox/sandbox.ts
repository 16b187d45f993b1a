// The criteria slow path: what the fast path leaves runs in child processes with a hard deadline.
// jsonata checks its own time limit only between steps, so a catastrophic regular expression or a
// built-in asked for 1e8 characters ($pad) would hold the event loop for seconds; in a child it holds
// only that child, which is killed at the deadline (or dies at its heap limit) and replaced. The main
// thread pays a structured clone of the record per evaluation and never runs the expression itself.
// Weighed: worker_threads (lighter, but a single large allocation past a worker's heap limit aborts
// the whole process: nodejs/node#47224), isolated-vm (a native build) and a non-backtracking regex
// engine (bounds regexes only, not $pad or string doubling). A child process bounds time and memory
// with nothing but Node itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { clockBindings } from '../criteria/bindings';
import { jsonataBoolean } from '../criteria/boolean';
import { Criteria, CriteriaError, DEFAULT_LIMITS, type CriteriaLimits, type SlowJob, type SlowPath } from '../criteria/criteria';

export interface SandboxOptions {
  /** Evaluation processes (default 2): one hostile evaluation never stalls the others. */
  workers?: number;
  /** Heap of each process in MB (default 96): a runaway allocation ends the evaluation, not the host. */
  memoryMb?: number;
  /** Evaluations waiting for a process before new ones are refused (default 10 000). */
  maxQueue?: number;
  /**
   * When a running evaluation is killed, in ms (default: 4 × the criteria time limit, at least 1 s).
   * jsonata stops itself at the limit between steps; the kill is for what it cannot interrupt (a
   * regular expression, a built-in). The margin keeps a loaded machine from killing honest work.
   */
  killAfterMs?: number;
  /** The Node binary the processes run (default: this process's); for hosts embedded in another runtime. */
  execPath?: string;
  /** Kills in a row after which an expression is refused at once for `coolDownMs` (default 3). */
  strikes?: number;
  /** How long such an expression is refused, in ms (default 60 000). */
  coolDownMs?: number;
  /** Wall clock for the cool-down (a resource bound, like the deadline); injectable for tests. */
  clock?: () => number;
}

// The child: a cache of compiled expressions and the same clock bindings and boolean cast as the
// main thread (their sources are inlined, so the two cannot drift apart). It leaves with its parent.
const CHILD_SOURCE = `
const jsonata = require(process.env.CADENZA_JSONATA);
const clockBindings = ${clockBindings.toString()};
const jsonataBoolean = ${jsonataBoolean.toString()};
const cache = new Map();
process.on('disconnect', () => process.exit(0));
process.on('message', async (job) => {
  try {
    let c = cache.get(job.expression);
    if (!c) {
      c = jsonata(job.expression, { timeout: job.limits.timeout, stack: job.limits.stack, sequence: job.limits.sequence });
      if (cache.size >= 2000) cache.delete(cache.keys().next().value);
      cache.set(job.expression, c);
    }
    const v = await c.evaluate(job.record, clockBindings(job.now, job.zone));
    const out = job.boolean ? jsonataBoolean(v) === true : v;
    try {
      process.send({ id: job.id, ok: true, value: out });
    } catch {
      process.send({ id: job.id, ok: false, message: 'the result is a function, not a value' });
    }
  } catch (e) {
    const err = e || {};
    process.send({ id: job.id, ok: false, message: String(err.message || err.code || e), code: err.code, position: err.position });
  }
});
process.send({ ready: true });
`;

interface Pending {
  id: number;
  job: SlowJob;
  resolve: (v: unknown) => void;
  reject: (e: CriteriaError) => void;
}

type Reply = { ready?: true; id?: number; ok?: boolean; value?: unknown; message?: string; code?: string; position?: number };

class Slot {
  child: ChildProcess;
  ready = false;
  running?: Pending;
  private timer?: NodeJS.Timeout;
  private dead = false;

  constructor(private readonly pool: Sandbox, memoryMb: number, private readonly killAfterMs?: number, execPath = process.execPath) {
    // Only what it needs: the child never sees the host's secrets (store URLs, keys) or NODE_OPTIONS.
    const env: NodeJS.ProcessEnv = { CADENZA_JSONATA: require.resolve('jsonata') };
    if (process.env.SystemRoot) env.SystemRoot = process.env.SystemRoot; // Windows needs it to start
    this.child = spawn(execPath, [`--max-old-space-size=${memoryMb}`, '--disallow-code-generation-from-strings', '-e', CHILD_SOURCE], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'advanced', env, windowsHide: true,
    });
    this.hold(true); // a slot starts because an evaluation is waiting for it
    this.child.stderr?.resume(); // a heap-limit report goes nowhere; the exit says what happened
    (this.child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    this.child.on('message', (m: Reply) => this.onMessage(m));
    this.child.on('error', (e) => this.die('error', `the evaluation process failed: ${e.message}`, 'sandbox'));
    // Killed at a deadline, or dead at its heap limit (SIGABRT / exit 134): either way, a bound stopped it.
    this.child.on('exit', (code, signal) => this.die('resource', signal === 'SIGABRT' || code === 134 ? 'ran out of its memory limit' : `the evaluation process stopped (${signal ?? code})`, 'memory'));
  }

  /** Idle children never keep a host alive; one evaluating does, until it answers (its caller is waiting). */
  private hold(on: boolean): void {
    const channel = this.child.channel as unknown as { ref?: () => void; unref?: () => void } | undefined;
    if (on) (this.child.ref(), channel?.ref?.());
    else (this.child.unref(), channel?.unref?.());
  }

  private onMessage(m: Reply): void {
    if (m.ready) {
      this.ready = true;
      this.pool.started();
      this.pool.pump();
      if (!this.running) this.hold(false);
      return;
    }
    const p = this.running;
    if (!p || p.id !== m.id) return;
    this.finish();
    this.pool.answered(p.job.expression);
    if (m.ok) p.resolve(m.value);
    else p.reject(new CriteriaError(p.job.expression, m.message ?? 'failed', m.position, m.code, m.code === 'D1012' ? 'timeout' : m.code === 'U1001' || m.code === 'D2015' ? 'resource' : 'error'));
    this.pool.pump();
  }

  start(p: Pending): void {
    this.running = p;
    this.hold(true);
    const { id, job } = p;
    // The deadline starts when the child has the job, so a queue or a child starting up never counts.
    const killAt = this.killAfterMs ?? Math.max(1000, 4 * job.limits.timeout);
    this.timer = setTimeout(() => this.die('timeout', `ran past its limit (${job.limits.timeout} ms) and was stopped after ${killAt} ms`, 'timeout'), killAt);
    try {
      this.child.send({ id, expression: job.expression, record: job.record, now: job.now, zone: job.zone, limits: job.limits, boolean: job.boolean });
    } catch (e) {
      this.finish();
      p.reject(new CriteriaError(job.expression, `the record cannot be evaluated: ${(e as Error).message}`, undefined, 'clone', 'error'));
      this.pool.pump();
    }
  }

  private finish(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = undefined;
    if (!this.dead) this.hold(false);
  }

  die(kind: 'timeout' | 'resource' | 'error', detail: string, code?: string): void {
    if (this.dead) return;
    this.dead = true;
    const p = this.running;
    this.finish();
    this.child.kill('SIGKILL');
    this.pool.replace(this);
    if (p && kind !== 'error') this.pool.killed(p.job.expression);
    if (p) p.reject(new CriteriaError(p.job.expression, detail, undefined, code, kind));
  }
}

/** A pool of evaluation processes; `evaluate` never blocks the calling thread for the expression's sake. */
export class Sandbox implements SlowPath {
  private slots: Slot[] = [];
  private queue: Pending[] = [];
  private next = 1;
  private closed = false;
  private readonly size: number;
  private readonly memoryMb: number;
  private readonly maxQueue: number;
  private readonly killAfterMs?: number;
  private readonly execPath?: string;
  /** Processes replaced after a time-out, a memory stop or a crash. */
  replaced = 0;

  constructor(options: SandboxOptions = {}) {
    this.size = Math.max(1, options.workers ?? 2);
    this.memoryMb = options.memoryMb ?? 96;
    this.maxQueue = options.maxQueue ?? 10_000;
    this.killAfterMs = options.killAfterMs;
    this.execPath = options.execPath;
    this.strikes = options.strikes ?? 3;
    this.coolDownMs = options.coolDownMs ?? 60_000;
    this.clock = options.clock ?? Date.now;
  }

  // A circuit breaker per expression: a view killed at its deadline on record after record (a flood of
  // hostile form posts against a backtracking regex) would keep every process busy for a second each;
  // after `strikes` kills in a row it is refused at once until the cool-down ends. Any answer resets it.
  private readonly strikes: number;
  private readonly coolDownMs: number;
  private readonly clock: () => number;
  private readonly breaker = new Map<string, { kills: number; until: number }>();

  answered(expression: string): void {
    this.breaker.delete(expression);
  }

  killed(expression: string): void {
    const b = this.breaker.get(expression) ?? { kills: 0, until: 0 };
    b.kills++;
    if (b.kills >= this.strikes) b.until = this.clock() + this.coolDownMs;
    if (this.breaker.size > 1000 && !this.breaker.has(expression)) this.breaker.delete(this.breaker.keys().next().value as string);
    this.breaker.set(expression, b);
  }

  evaluate(job: SlowJob): Promise<unknown> {
    if (this.closed) return Promise.reject(new CriteriaError(job.expression, 'the evaluation sandbox is closed', undefined, 'closed', 'error'));
    const b = this.breaker.get(job.expression);
    if (b && b.until > this.clock()) {
      return Promise.reject(new CriteriaError(job.expression, `was stopped ${b.kills} times in a row; not evaluated again until ${new Date(b.until).toISOString()}`, undefined, 'timeout', 'timeout'));
    }
    if (this.queue.length >= this.maxQueue) return Promise.reject(new CriteriaError(job.expression, `${this.maxQueue} evaluations are already waiting`, undefined, 'busy', 'resource'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.next++, job, resolve, reject });
      this.grow();
      this.pump();
    });
  }

  /** Starts processes while evaluations wait for one (up to the pool size): idle pools cost nothing. */
  private grow(): void {
    while (!this.closed && this.slots.length < this.size && this.slots.length < this.queue.length + this.busy()) this.slots.push(new Slot(this, this.memoryMb, this.killAfterMs, this.execPath));
  }

  private busy(): number {
    return this.slots.filter((s) => s.running).length;
  }

  /** Hands waiting evaluations to idle, ready processes. */
  pump(): void {
    for (const s of this.slots) {
      if (!this.queue.length) return;
      if (s.ready && !s.running) s.start(this.queue.shift()!);
    }
  }

  private startFailures = 0;

  /** A process answered 'ready'. */
  started(): void {
    this.startFailures = 0;
  }

  /**
   * A process ended (killed at its deadline, out of memory, crashed): it is dropped and, while work
   * waits, another starts. Three that die before starting (no node binary, no processes left) fail the
   * waiting evaluations as errors rather than spawning forever; the next evaluation tries again.
   */
  replace(dead: Slot): void {
    const i = this.slots.indexOf(dead);
    if (i < 0) return;
    this.slots.splice(i, 1);
    this.replaced++;
    if (!dead.ready && ++this.startFailures >= 3) {
      this.startFailures = 0;
      for (const p of this.queue.splice(0)) p.reject(new CriteriaError(p.job.expression, 'the evaluation process cannot start', undefined, 'sandbox', 'error'));
      return;
    }
    this.grow();
  }

  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots;
    this.slots = [];
    for (const p of this.queue.splice(0)) p.reject(new CriteriaError(p.job.expression, 'the evaluation sandbox is closed', undefined, 'closed', 'error'));
    for (const s of slots) s.die('error', 'the evaluation sandbox is closed', 'closed');
  }
}

let shared: Sandbox | undefined;

/** Criteria whose slow path runs in the shared sandbox: what the runtime uses. */
export function boundedCriteria(limits: CriteriaLimits = DEFAULT_LIMITS): Criteria {
  return new Criteria(limits, 5000, true, sharedSandbox());
}

/** One pool per process, shared by every runtime in it (a host may run several). */
export function sharedSandbox(): Sandbox {
  if (!shared) shared = new Sandbox();
  return shared;
}
