// Adapters use the engine through its public entry points only: engine/index.ts (the engine) and
// engine/host/index.ts (the host kit). A deep import would tie an adapter to the engine's layout.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '../..');
const ENTRY_POINTS = new Set([resolve(root, 'engine'), resolve(root, 'engine/host')]);

function engineImports(folder: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
          const target = resolve(dir, m[1]);
          if (target.startsWith(resolve(root, 'engine'))) out.push(`${relative(root, p)} -> ${relative(root, target)}`);
        }
      }
    }
  };
  walk(join(root, folder));
  return out;
}

describe('entry points', () => {
  it('D4 every import from the Node-RED adapter and the credentials into the engine names a public entry point', () => {
    const all = [...engineImports('nodes/node-red'), ...engineImports('credentials')];
    expect(all.length).toBeGreaterThan(10); // the check sees the imports
    expect(all.filter((i) => !ENTRY_POINTS.has(resolve(root, i.split(' -> ')[1])))).toEqual([]);
  });
});
