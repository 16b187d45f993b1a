// A TCP port nothing listens on right now, for a server a test starts as a separate process.
//
// Chosen below the kernel's ephemeral range (32768+ here): a port the kernel hands out for `listen(0)` is one it
// also hands out to outgoing connections, and the suite opens thousands (PostgreSQL pools, HTTP clients). A child
// that takes a second or thirty to start under load could find its port held by one of them (EADDRINUSE in CI).
import { createServer } from 'node:net';

const LOW = 20000;
const HIGH = 32000;

const tryListen = (port: number) => new Promise<boolean>((resolve) => {
  const s = createServer();
  s.once('error', () => resolve(false));
  s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
});

export async function freePort(): Promise<number> {
  for (;;) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (await tryListen(port)) return port;
  }
}
