// The embedded store is loaded only when a SQLite store is opened. `node:sqlite` exists from Node.js
// 22.13 on (unflagged); loading it up front made every node of the package crash on Node 20 with
// ERR_UNKNOWN_BUILTIN_MODULE — even with a postgres:// store, which needs no SQLite at all.
import type { SqliteStore as SqliteStoreClass } from './sqlite/sqlite-store';
import { CadenzaError } from '../model/errors';

type SqliteModule = typeof import('./sqlite/sqlite-store');
let loaded: SqliteModule | undefined;

/** The sentence every host shows (node status, log, CLI) when this Node.js has no node:sqlite. */
export function sqliteUnavailableMessage(version = process.versions.node): string {
  return `Cadenza's embedded store needs Node.js ≥ 22.13 (this is ${version.split('.')[0]}.x); use a postgres:// store or upgrade`;
}

/**
 * Tests run the TypeScript sources through vitest's module loader, which a plain `require` cannot
 * reach: its setup file hands the module over here (test/helpers/sqlite-setup.ts). The built package
 * never calls this.
 */
export function provideSqlite(module: SqliteModule): void {
  loaded = module;
}

/** Loads the SQLite store module, or throws the message above (never a raw loader error). */
export function loadSqlite(): SqliteModule {
  if (loaded) return loaded;
  try {
    // A require at the call site, not an import: TypeScript would hoist an import to the top of the file.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require('./sqlite/sqlite-store') as SqliteModule;
    return loaded;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_UNKNOWN_BUILTIN_MODULE' || /node:sqlite/.test(String((e as Error).message))) {
      throw new CadenzaError('node_version', 'D1', sqliteUnavailableMessage());
    }
    throw e;
  }
}

/**
 * `new SqliteStore(path)` for the public API, resolved on first use. A Proxy keeps it a real
 * constructor (and `instanceof` works: both read the loaded class) without loading it at import time.
 */
export const SqliteStore = new Proxy(function SqliteStore() {} as unknown as typeof SqliteStoreClass, {
  construct: (_t, args) => new (loadSqlite().SqliteStore)(...(args as [string])),
  get: (_t, prop) => Reflect.get(loadSqlite().SqliteStore, prop),
  getPrototypeOf: () => Reflect.getPrototypeOf(loadSqlite().SqliteStore),
});
export type SqliteStore = SqliteStoreClass;
