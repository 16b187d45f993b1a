// D2 + D4: the idempotency key a host sees goes into HTTP headers (Idempotency-Key, X-Cadenza-Key) and
// mail headers, so it must be printable ASCII without separators whatever the record id holds. Keys
// made of safe characters stay as they are (readable, and stable for hosts that already stored them);
// any other is percent-encoded, which is reversible, deterministic and still unique.
const SAFE = /^[A-Za-z0-9._~:@+\-]+$/;

export function headerSafeKey(key: string): string {
  // A key that already starts with the prefix is encoded too, so engineKey() can always tell the two apart.
  return SAFE.test(key) && !key.startsWith('u~') ? key : `u~${encodeURIComponent(key).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

/** The engine's own key back from what a host sends (an outcome posted with the header-safe key). */
export function engineKey(key: string): string {
  if (!key.startsWith('u~')) return key;
  try {
    return decodeURIComponent(key.slice(2));
  } catch {
    return key;
  }
}

/**
 * D4: record ids the engine cannot carry. Control characters (CR/LF would split a header or a log line)
 * and ids too long for a key are refused at upsert, with the reason.
 */
export function recordIdProblem(id: string): string | null {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) return 'record.id must not contain control characters (CR, LF, tab, …)';
  if (id.length > 200) return `record.id is ${id.length} characters long (at most 200)`;
  return null;
}
