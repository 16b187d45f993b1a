// A performer that POSTs each due action to a URL (`cadenza serve --dispatch-url`). The answer decides
// (D5, D6): 2xx delivered; 408/425/429/5xx, a refused connection or no answer in time transient
// (retried under the same key); any other 4xx permanent (the step fails, naming the status).
import { transientStatus } from '../machine/delivery';
import { CannotRunError } from './dispatcher';
import type { DispatchHandler } from './runtime';

export function httpPerformer(url: string, timeoutMs = 25_000): DispatchHandler {
  return async (a) => {
    const r = await fetch(url, {
      method: 'POST',
      // The key is header-safe by construction (keys.ts); the body carries everything else.
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': a.idempotencyKey },
      body: JSON.stringify(a),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await r.body?.cancel().catch(() => undefined);
    if (r.ok) return;
    if (transientStatus(r.status)) {
      // A 429 or 503 may say when to come back (RFC 9110 Retry-After: seconds or a date): the retry waits at least that long.
      const wait = retryAfterMs(r.headers.get('retry-after'));
      throw Object.assign(new Error(`dispatch URL answered ${r.status}${wait !== undefined ? ` (Retry-After ${Math.round(wait / 1000)} s)` : ''}`), wait !== undefined ? { retryAfterMs: wait } : {});
    }
    throw new CannotRunError(`dispatch URL answered ${r.status}`);
  };
}

function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  const ms = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, 86_400_000) : undefined; // at most a day: the hold time bounds it anyway
}
