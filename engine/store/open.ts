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
  const path = file === ':memory:' || isAbsolute(file) ? file : join(baseDir, file);
  const Sqlite = loadSqlite().SqliteStore;
  try {
    return new Sqlite(path);
  } catch (e) {
    // SQLite says only "unable to open database file": name the file, and what usually causes it.
    throw new Error(`cannot open the SQLite store ${path}: ${e instanceof Error ? e.message : String(e)} (does its folder exist, and may this process write there?)`, { cause: e });
  }
}

/** Where a store spec points, for messages (the password of a URL is hidden). */
export function describeStore(spec: string | undefined, baseDir: string): string {
  const s = spec?.trim() || 'cadenza.db';
  if (/^postgres(ql)?:\/\//.test(s)) return s.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  const file = s.replace(/^sqlite:/, '');
  return isAbsolute(file) ? file : join(baseDir, file);
}
