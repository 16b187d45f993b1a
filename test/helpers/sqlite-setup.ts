// vitest runs the TypeScript sources through its own loader; the engine's lazy `require` of the SQLite
// store (engine/store/lazy-sqlite.ts) would look for a built .js beside the .ts. Hand it the module vitest
// loaded, so tests and the engine share one SqliteStore class.
import { provideSqlite } from '../../engine/store/lazy-sqlite';
import * as sqliteStore from '../../engine/store/sqlite/sqlite-store';

provideSqlite(sqliteStore);
