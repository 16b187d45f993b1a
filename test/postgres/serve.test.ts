// `cadenza serve` on PostgreSQL, as a user runs it: the real CLI in a child process. A supervisor's
// SIGTERM must end it (its pool and its LISTEN connection closed); it used to stay up until a second one.
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshPostgres } from '../helpers/harness';

const bin = join(resolve(__dirname, '../..'), 'bin/cadenza.js');

describe('cadenza serve on PostgreSQL', () => {
  it('D1 one SIGTERM stops it: it finishes, closes the store (pool and LISTEN connection) and exits 0', async () => {
    const url = await freshPostgres();
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--store', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await new Promise<void>((ok, fail) => {
        child.stdout.on('data', (b) => ((out += b), /serving on/.test(out) && ok()));
        child.stderr.on('data', (b) => (out += b));
        void exited.then((code) => fail(new Error(`serve exited ${code} before serving: ${out}`)));
      });
      await new Promise((r) => setTimeout(r, 300)); // its scheduler's first pass and LISTEN are up
      child.kill('SIGTERM');
      // Waiting is bounded only so that a process that never exits fails the test instead of hanging it.
      const code = await Promise.race([exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 30_000))]);
      expect(code, out).toBe(0);
      expect(out).toMatch(/Stopping/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
