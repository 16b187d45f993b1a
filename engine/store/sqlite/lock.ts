// SQLite's deploy lock (Store.exclusive): a lock row in `meta`, so processes sharing the file take turns
// too. Its lease is wall-clock time (this is I/O coordination, not cadence time) and is renewed while the
// holder works, so it frees within 30 s only when the holder has died.
import { randomUUID } from 'node:crypto';
import type { StatementSync } from 'node:sqlite';

const LOCK_LEASE_MS = 30_000;

export interface LockHost {
  tx<T>(fn: () => T): T;
  prepare(sql: string): StatementSync;
}

export async function leaseLock<T>(store: LockHost, key: string, fn: () => Promise<T>): Promise<T> {
  const name = `lock:${key}`;
  const me = randomUUID();
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    const now = Date.now();
    const got = store.tx(() => {
      const held = store.prepare('SELECT value FROM meta WHERE key = ?').get(name) as { value: string } | undefined;
      if (held && JSON.parse(held.value).until > now) return false;
      store.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(name, JSON.stringify({ owner: me, until: now + LOCK_LEASE_MS }));
      return true;
    });
    if (got) break;
    await new Promise((r) => setTimeout(r, wait));
  }
  // Renewed while fn runs (a publish may enroll a large view), so a short lease only frees a dead holder's lock.
  const renew = setInterval(() => {
    store.prepare("UPDATE meta SET value = ? WHERE key = ? AND json_extract(value, '$.owner') = ?").run(JSON.stringify({ owner: me, until: Date.now() + LOCK_LEASE_MS }), name, me);
  }, LOCK_LEASE_MS / 3);
  renew.unref();
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    store.prepare("DELETE FROM meta WHERE key = ? AND json_extract(value, '$.owner') = ?").run(name, me);
  }
}
