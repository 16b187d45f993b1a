// Process B of the PostgreSQL latency figure (latency.ts): a worker that runs the scheduler's own loop
// on the real clock and tells the parent, over IPC, the record of each action handed off to it.
import { Runtime } from '../../engine/runtime/runtime';
import { PostgresStore } from '../../engine/store/postgres/postgres-store';

const [url, interval] = [process.argv[2], Number(process.argv[3])];

async function main() {
  const rt = await new Runtime({ store: new PostgresStore(url, { max: 4 }), secret: 'bench' }).init();
  rt.onDispatch((action) => void process.send!({ recordId: action.recordId }));
  rt.start(interval);
  const stop = async () => {
    await rt.stop();
    await rt.store.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('disconnect', () => void stop()); // the parent died: do not linger
  process.send!({ ready: true });
}

main().catch((e) => {
  process.stderr.write(`latency child: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
