// One way to name a store everywhere (CLI, Node-RED config, n8n credential): a `postgres://` URL for
// the shared scale-out store, else a SQLite file (`sqlite:` prefix optional) relative to `baseDir`.
import { isAbsolute, join } from 'node:path';
import { PostgresStore } from './postgres/postgres-store';
import { loadSqlite } from './lazy-sqlite';
import type { Store } from './store';

export function openStore(spec: string | undefined, baseDir: string): Store {
  const s = spec?.trim() || 'cadenza.db';
  if (/^postgres(ql)?:\/\//.test(s)) return new PostgresStore(s);
  const file = s.replace(/^sqlite:/, '');
  // Loaded here, not at import: a postgres:// store must work on a Node.js without node:sqlite.
  return new (loadSqlite().SqliteStore)(file === ':memory:' || isAbsolute(file) ? file : join(baseDir, file));
}

/** Where a store spec points, for messages (the password of a URL is hidden). */
export function describeStore(spec: string | undefined, baseDir: string): string {
  const s = spec?.trim() || 'cadenza.db';
  if (/^postgres(ql)?:\/\//.test(s)) return s.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  const file = s.replace(/^sqlite:/, '');
  return isAbsolute(file) ? file : join(baseDir, file);
}
