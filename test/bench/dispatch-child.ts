// One worker process of the PostgreSQL dispatch figure (postgres.ts): workers are separate processes,
// as they are in production (n8n workers, Node-RED instances, `cadenza serve` replicas), so "2 workers"
// has two JavaScript threads, not two runtimes sharing one. Virtual time stands still at T0 (everything
// is due); the worker ticks until the parent says stop, and reports each batch it was handed.
import { VirtualClock } from '../../engine/runtime/clock';
import { Runtime } from '../../engine/runtime/runtime';
import { PostgresStore } from '../../engine/store/postgres/postgres-store';
import { ownCpuMs } from './cpu';

const [url, t0] = [process.argv[2], Number(process.argv[3])];

async function main() {
  const rt = await new Runtime({ store: new PostgresStore(url, { max: 4 }), clock: new VirtualClock(t0), secret: 'bench', batchSize: 200 }).init();
  rt.onDispatchBatch((batch) => void process.send!({ sent: batch.length }));
  let running = true;
  process.once('disconnect', () => (running = false)); // the parent died: do not linger
  process.on('message', async (m: { go?: true; stop?: true }) => {
    if (m.stop) running = false;
    if (!m.go) return;
    const cpu = process.cpuUsage();
    while (running) if ((await rt.tick()).dispatched === 0) await new Promise((r) => setTimeout(r, 1));
    await rt.store.close();
    // The worker's own CPU from the go signal on (the parent adds the database server's).
    process.send!({ cpuMs: ownCpuMs(cpu) }, () => process.exit(0));
  });
  process.send!({ ready: true });
}

main().catch((e) => {
  process.stderr.write(`dispatch child: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
