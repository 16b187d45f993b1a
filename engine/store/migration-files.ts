// The numbered SQL files of a dialect, in order. Two files with one number would apply one and record
// the other as done (or fail half-way on another process): refused up front, naming both.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export function migrationFiles(dir: string): { version: number; path: string }[] {
  const files = readdirSync(dir).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  const seen = new Map<number, string>();
  for (const f of files) {
    const version = parseInt(f, 10);
    if (seen.has(version)) throw new Error(`migrations ${seen.get(version)} and ${f} in ${dir} both claim version ${version} (a stale build? rebuild with npm run build)`);
    seen.set(version, f);
  }
  return files.map((f) => ({ version: parseInt(f, 10), path: join(dir, f) }));
}

/**
 * Refuses to open a database a newer version migrated: its rows may be laid out in a way this code
 * cannot read or write (an older worker left running after an upgrade would claim work and fail on it
 * in silence). Said before anything is read.
 */
export function refuseNewerSchema(applied: readonly number[], known: readonly { version: number }[]): void {
  const newest = Math.max(0, ...applied);
  const ours = Math.max(0, ...known.map((m) => m.version));
  if (newest > ours) {
    throw new Error(`this database was migrated by a newer Cadenza (schema version ${newest}; this version knows up to ${ours}): upgrade this process to the version the others run (stop every process, then start them all on the new version)`);
  }
}
