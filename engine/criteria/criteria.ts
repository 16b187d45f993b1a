// JSONata criteria (views, exit criteria). Each expression is compiled once and cached; time inside
// an expression is the engine's clock, passed in, never the wall clock (E7); jsonata's own guardrails
// bound depth and time so a hostile expression cannot hang the process.
import jsonata from 'jsonata';
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

export class CriteriaError extends Error {
  constructor(readonly expression: string, readonly detail: string, readonly position?: number) {
    super(`invalid JSONata "${expression.length > 80 ? expression.slice(0, 77) + '...' : expression}": ${detail}`);
    this.name = 'CriteriaError';
  }
}

const MAX_EXPRESSION = 10_000;
const DAY = 86_400_000;

function toMillis(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

/** Compiles and evaluates criteria; one instance per runtime, so the cache is shared by every cadence. */
export class Criteria {
  private readonly cache = new Map<string, Compiled>();
  compilations = 0;

  fastEvaluations = 0;

  /** `fast: false` evaluates everything with jsonata (the reference the fast path is tested against). */
  constructor(private readonly limits: CriteriaLimits = DEFAULT_LIMITS, private readonly cacheSize = 5000, private readonly fast = true) {}

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
      const err = e as { message?: string; position?: number };
      throw new CriteriaError(expression, err.message ?? String(e), err.position);
    }
    this.compilations++;
    if (this.fast) compiled.fast = compileFast(compiled.ast());
    if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(expression, compiled);
    return compiled;
  }

  /**
   * Evaluates to a boolean (JSONata truthiness: empty/undefined is false). `now` is the engine clock.
   * Answers synchronously when the fast path decides (no promise, no microtask), else a promise.
   */
  test(expression: string, record: unknown, now: number): boolean | Promise<boolean> {
    const compiled = this.compile(expression);
    if (compiled.fast) {
      const v = compiled.fast(record, now);
      if (v !== FALLBACK) {
        this.fastEvaluations++;
        return toBoolean(v);
      }
    }
    return this.evaluate(expression, record, now).then(toBoolean);
  }

  async evaluate(expression: string, record: unknown, now: number): Promise<unknown> {
    const compiled = this.compile(expression);
    if (compiled.fast) {
      const v = compiled.fast(record, now);
      if (v !== FALLBACK) {
        this.fastEvaluations++;
        return v;
      }
    }
    try {
      return await compiled.evaluate(record, clockBindings(now));
    } catch (e) {
      const err = e as { message?: string; code?: string };
      throw new CriteriaError(expression, err.message ?? err.code ?? String(e));
    }
  }

  /** Whether an expression reads the clock, so the runtime re-evaluates it as time passes (E7). */
  static dependsOnTime(expression: string): boolean {
    return /\$(now|millis|today|daysSince|hoursSince|daysUntil)\b/.test(expression);
  }
}

function toBoolean(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0 && value.some(Boolean);
  return Boolean(value);
}

/** `$now()`, `$millis()` and the date helpers, all reading the engine clock `now`. */
function clockBindings(now: number): Record<string, unknown> {
  const iso = new Date(now).toISOString();
  return {
    now: () => iso,
    millis: () => now,
    today: () => iso.slice(0, 10),
    daysSince: (v: unknown) => {
      const t = toMillis(v);
      return t === undefined ? undefined : Math.floor((now - t) / DAY);
    },
    hoursSince: (v: unknown) => {
      const t = toMillis(v);
      return t === undefined ? undefined : Math.floor((now - t) / 3_600_000);
    },
    daysUntil: (v: unknown) => {
      const t = toMillis(v);
      return t === undefined ? undefined : Math.ceil((t - now) / DAY);
    },
  };
}
