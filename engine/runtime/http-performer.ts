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
    if (transientStatus(r.status)) throw new Error(`dispatch URL answered ${r.status}`);
    throw new CannotRunError(`dispatch URL answered ${r.status}`);
  };
}
