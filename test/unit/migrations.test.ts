// The numbered migrations: both dialects carry the same versions, and a folder where two files claim
// one version (a stale build) is refused by name before anything is applied.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrationFiles } from '../../engine/store/migration-files';

const root = join(__dirname, '../../engine/store');

describe('migrations', () => {
  it('SQLite and PostgreSQL have the same numbered migrations', () => {
    const names = (d: string) => migrationFiles(join(root, d, 'migrations')).map((m) => m.path.split(/[\\/]/).pop());
    expect(names('sqlite')).toEqual(names('postgres'));
    expect(names('sqlite').length).toBeGreaterThanOrEqual(4);
  });

  it('two files with one version are refused, both named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cadenza-mig-'));
    try {
      for (const f of ['0001_init.sql', '0002_a.sql', '0002_b.sql']) writeFileSync(join(dir, f), '');
      expect(() => migrationFiles(dir)).toThrow(/0002_a\.sql and 0002_b\.sql .* version 2/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
