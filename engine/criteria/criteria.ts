// JSONata criteria (views, exit criteria). Each expression is compiled once and cached; time inside
// an expression is the engine's clock, passed in, never the wall clock (E7). The fast path
// (./fast.ts) answers the common subset in-process, exactly as jsonata would; everything else goes
// to the slow path. Without one, jsonata runs here, bounded only between its steps; the runtime gives
// the sandbox (engine/sandbox), which runs it in a worker with a deadline it can enforce (a regular
// expression or a built-in that runs for seconds is stopped, and the event loop never waits for it).
import jsonata from 'jsonata';
import { clockBindings } from './bindings';
import { jsonataBoolean } from './boolean';
import { compileFast, FALLBACK } from './fast';

export interface CriteriaLimits {
  /** Maximum evaluation depth (recursion). */
  stack: number;
  /** Maximum evaluation time in milliseconds, a resource bound only: results never depend on it. */
  timeout: number;
  /** Maximum sequence length built during evaluation. */
  sequence: number;
}

export const DEFAULT_LIMITS: CriteriaLimits = { stack: 200, timeout: 250, sequence: 100_000 };

type Compiled = ReturnType<typeof jsonata> & { fast?: ReturnType<typeof compileFast> };

/** invalid: it does not compile; error: jsonata raised an error on this record; timeout/resource: a bound stopped it. */
export type CriteriaErrorKind = 'invalid' | 'error' | 'timeout' | 'resource';

export class CriteriaError extends Error {
  constructor(
    readonly expression: string,
    readonly detail: string,
    readonly position?: number,
    /** jsonata's error code (T0410, D1001 …), or `timeout` / `memory`. */
    readonly code?: string,
    readonly kind: CriteriaErrorKind = 'invalid',
  ) {
    const shown = expression.length > 80 ? expression.slice(0, 77) + '...' : expression;
    super(kind === 'invalid' ? `invalid JSONata "${shown}": ${detail}` : kind === 'error' ? `JSONata "${shown}" failed${code ? ` (${code})` : ''}: ${detail}` : `JSONata "${shown}" was stopped: ${detail}`);
    this.name = 'CriteriaError';
  }
}

/** What a criteria check decided: a match or not, or an error that leaves it undecided (never "no match"). */
export type Decision = { match: boolean; error?: undefined } | { match: undefined; error: CriteriaError };

/** One evaluation, as the slow path receives it. */
export interface SlowJob {
  expression: string;
  record: unknown;
  now: number;
  zone?: string;
  limits: CriteriaLimits;
  /** Return jsonata's boolean cast of the result instead of the result. */
  boolean: boolean;
}

/** Where evaluations outside the fast path run; rejects with a CriteriaError. */
export interface SlowPath {
  evaluate(job: SlowJob): Promise<unknown>;
}

const MAX_EXPRESSION = 10_000;

/** A thrown jsonata error (a plain object with a code) or a bound as a CriteriaError. */
export function toCriteriaError(expression: string, e: unknown, kind: CriteriaErrorKind = 'error'): CriteriaError {
  if (e instanceof CriteriaError) return e;
  const err = (e ?? {}) as { message?: string; code?: string; position?: number };
  const code = err.code;
  // jsonata's own time and depth limits (D1012 timeout, U1001 stack) are bounds, not answers.
  const k = code === 'D1012' ? 'timeout' : code === 'U1001' || code === 'D2015' ? 'resource' : kind;
  return new CriteriaError(expression, err.message ?? code ?? String(e), err.position, code, k);
}

/** Compiles and evaluates criteria; one instance per runtime, so the cache is shared by every cadence. */
export class Criteria {
  private readonly cache = new Map<string, Compiled>();
  compilations = 0;

  fastEvaluations = 0;

  /**
   * `fast: false` evaluates everything with jsonata (the reference the fast path is tested against);
   * `slow` runs what the fast path leaves (the sandbox), else jsonata runs in this thread.
   */
  constructor(
    readonly limits: CriteriaLimits = DEFAULT_LIMITS,
    private readonly cacheSize = 5000,
    private readonly fast = true,
    private readonly slow?: SlowPath,
  ) {}

  /** Compiles (or returns the cached) expression; a syntax error becomes a CriteriaError. */
  compile(expression: string): Compiled {
    const hit = this.cache.get(expression);
    if (hit) return hit;
    if (typeof expression !== 'string' || expression.trim() === '') throw new CriteriaError(String(expression), 'empty expression');
    if (expression.length > MAX_EXPRESSION) throw new CriteriaError(expression, `longer than ${MAX_EXPRESSION} characters`);
    let compiled: Compiled;
    try {
      compiled = jsonata(expression, { timeout: this.limits.timeout, stack: this.limits.stack, sequence: this.limits.sequence } as never);
    } catch (e) {
      throw toCriteriaError(expression, e, 'invalid');
    }
    this.compilations++;
    if (this.fast) compiled.fast = compileFast(compiled.ast());
    if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(expression, compiled);
    return compiled;
  }

  /**
   * Evaluates to a boolean by jsonata's boolean cast (undefined, '', 0, null, {}, [] and functions are
   * false). `now` is the engine clock, `zone` the record's or cadence's (for `$today()`). Answers
   * synchronously when the fast path decides (no promise, no microtask), else a promise; an error or a
   * time-out rejects with a CriteriaError.
   */
  test(expression: string, record: unknown, now: number, zone?: string): boolean | Promise<boolean> {
    const compiled = this.compile(expression);
    const v = this.tryFast(compiled, record, now, zone);
    if (v !== FALLBACK) return this.cast(expression, v);
    return this.run(expression, compiled, record, now, zone, true).then((b) => b === true);
  }

  /** The result of the expression (what `test` casts); rejects with a CriteriaError. */
  async evaluate(expression: string, record: unknown, now: number, zone?: string): Promise<unknown> {
    const compiled = this.compile(expression);
    const v = this.tryFast(compiled, record, now, zone);
    if (v !== FALLBACK) return v;
    return this.run(expression, compiled, record, now, zone, false);
  }

  /**
   * Like `test`, but an error is an answer: `{ match: undefined, error }` names what went wrong
   * (syntax, jsonata error code, time-out), so a caller can say so instead of treating it as "no match".
   */
  decide(expression: string, record: unknown, now: number, zone?: string): Decision | Promise<Decision> {
    const fail = (e: unknown): Decision => {
      if (e instanceof CriteriaError) return { match: undefined, error: e };
      throw e;
    };
    try {
      const r = this.test(expression, record, now, zone);
      return typeof r === 'boolean' ? { match: r } : r.then((match) => ({ match }), fail);
    } catch (e) {
      return fail(e);
    }
  }

  private tryFast(compiled: Compiled, record: unknown, now: number, zone?: string): unknown {
    if (!compiled.fast) return FALLBACK;
    const v = compiled.fast(record, now, zone);
    if (v !== FALLBACK) this.fastEvaluations++;
    return v;
  }

  private cast(expression: string, v: unknown): boolean {
    try {
      return jsonataBoolean(v) === true;
    } catch (e) {
      throw toCriteriaError(expression, e);
    }
  }

  private async run(expression: string, compiled: Compiled, record: unknown, now: number, zone: string | undefined, boolean: boolean): Promise<unknown> {
    if (this.slow) return this.slow.evaluate({ expression, record, now, zone, limits: this.limits, boolean });
    try {
      const v = await compiled.evaluate(record, clockBindings(now, zone));
      return boolean ? jsonataBoolean(v) === true : v;
    } catch (e) {
      throw toCriteriaError(expression, e);
    }
  }

  /**
   * Mistakes that compile but can only fail at evaluation, found in the AST: a call of a name without
   * `$` (`not(Flag)`, `contains(Name, "x")`) is a call of a record field, which JSON never holds, so
   * jsonata raises T1005 on every record. Publishing refuses them (D4) instead of failing per record.
   */
  lint(expression: string): string[] {
    const problems: string[] = [];
    const stack: unknown[] = [this.compile(expression).ast()];
    while (stack.length) {
      const n = stack.pop();
      if (!n || typeof n !== 'object') continue;
      if (Array.isArray(n)) {
        stack.push(...n);
        continue;
      }
      const node = n as { type?: string; procedure?: { type?: string; steps?: { type?: string; value?: unknown }[] } };
      const steps = node.procedure?.steps;
      if ((node.type === 'function' || node.type === 'partial') && node.procedure?.type === 'path' && steps?.length === 1 && steps[0].type === 'name') {
        const name = String(steps[0].value);
        problems.push(`calls ${name}(…), which is a field, not a function: did you mean $${name}(…)?`);
      }
      for (const v of Object.values(n)) if (v && typeof v === 'object') stack.push(v);
    }
    return problems;
  }

  /** Whether an expression reads the clock, so the runtime re-evaluates it as time passes (E7). */
  static dependsOnTime(expression: string): boolean {
    return /\$(now|millis|today|daysSince|hoursSince|daysUntil)\b/.test(expression);
  }
}
