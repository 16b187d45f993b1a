// A child process for the memory figure: `waiting N` holds N waiting enrollments in the engine's store
// and runs the scheduler; `timers N` holds N setTimeout timers, as in-memory delay nodes do.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../../engine/runtime/clock';
import { Runtime } from '../../engine/runtime/runtime';
import { SqliteStore } from '../../engine/store/sqlite/sqlite-store';

const [mode, count] = [process.argv[2], Number(process.argv[3])];
const T0 = Date.parse('2026-03-02T08:00:00Z');

async function main() {
  if (mode === 'timers') {
    const timers: NodeJS.Timeout[] = [];
    for (let i = 0; i < count; i++) timers.push(setTimeout(() => void i, 86_400_000 + i));
    global.gc?.();
    process.stdout.write(JSON.stringify({ rss: process.memoryUsage().rss }));
    for (const t of timers) clearTimeout(t);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cadenza-mem-'));
  const store = new SqliteStore(join(dir, 'cadenza.db'));
  await store.migrate();
  const db = store.db;
  // The rows of N waiting enrollments, written directly: the figure is what the running engine holds.
  const state = (i: number) => JSON.stringify({ id: `bench:r${i}`, cadenceId: 'bench', version: 1, recordId: `r${i}`, module: 'Leads', status: 'active', run: 1, position: 'e1', wait: 'due', dueAt: T0 + 86_400_000 + i, startedAt: T0, enrolledBy: 'bench', reason: 'enrolled', updatedAt: T0, last: null, exitChecks: [], executed: 0 });
  const e = db.prepare("INSERT INTO enrollments (id, cadence_id, record_id, module, status, rev, state, started_at, updated_at, due_at) VALUES (?, 'bench', ?, 'Leads', 'active', 1, ?, ?, ?, ?)");
  db.exec('BEGIN');
  for (let i = 0; i < count; i++) e.run(`bench:r${i}`, `r${i}`, state(i), T0, T0, T0 + 86_400_000 + i);
  db.exec('COMMIT');
  const clock = new VirtualClock(T0);
  const rt = await new Runtime({ store, clock, secret: 'bench' }).init();
  for (let i = 0; i < 10; i++) {
    clock.advance(60_000);
    await rt.tick();
  }
  global.gc?.();
  process.stdout.write(JSON.stringify({ rss: process.memoryUsage().rss }));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

void main();
