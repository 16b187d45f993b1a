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
