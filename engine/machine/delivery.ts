// D6 as a pure decision: after a failed hand-off, retry (when) or give up (why). The dispatcher asks;
// it never decides. No clock, no randomness of its own: both come in as arguments.

export interface DeliveryPolicy {
  /** First retry after this long; each later one waits twice as long, up to `maxMs`. */
  baseMs: number;
  maxMs: number;
  /** How long a performer may keep failing transiently before the step fails (default 3 days). */
  holdMs: number;
  /** ± this fraction of each wait, so retries of many actions don't arrive in one wave. */
  jitter: number;
}

export const DEFAULT_DELIVERY: DeliveryPolicy = { baseMs: 30_000, maxMs: 3_600_000, holdMs: 3 * 86_400_000, jitter: 0.2 };

/** What went wrong with one hand-off, as the dispatcher saw it. */
export interface Failure {
  message: string;
  /** The performer said it can never succeed (bad address, 4xx other than 408/425/429, a handler's own verdict). */
  permanent: boolean;
  /** The performer asked to come back no sooner than this (an HTTP Retry-After). */
  retryAfterMs?: number;
}

export type Decision = { retryAt: number; reason: string } | { giveUp: string };

/**
 * `attempts` hand-offs have failed so far (this one included); the action was first queued at `heldSince`.
 * `random` is a number in [0, 1).
 */
export function afterFailure(p: DeliveryPolicy, attempts: number, heldSince: number, now: number, f: Failure, random: number): Decision {
  if (f.permanent) return { giveUp: f.message };
  const wait = Math.min(p.maxMs, p.baseMs * 2 ** Math.max(0, attempts - 1));
  const retryAt = now + Math.max(Math.round(wait * (1 - p.jitter + 2 * p.jitter * random)), f.retryAfterMs ?? 0);
  const until = heldSince + p.holdMs;
  if (now >= until) return { giveUp: `its performer kept failing for ${human(now - heldSince)} (last: ${f.message})` };
  return { retryAt: Math.min(retryAt, until), reason: `waiting for its performer: attempt ${attempts} failed (${f.message}); retry at ${new Date(Math.min(retryAt, until)).toISOString()}, held until ${new Date(until).toISOString()}` };
}

/** HTTP answers worth retrying: time-out, too early, too many requests, and every server error. */
export function transientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

function human(ms: number): string {
  if (ms >= 86_400_000) return `${Math.round(ms / 3_600_000) / 24} days`;
  if (ms >= 3_600_000) return `${Math.round(ms / 360_000) / 10} hours`;
  return `${Math.round(ms / 1000)} s`;
}
