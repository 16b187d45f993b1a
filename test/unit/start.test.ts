// `npm start` when its editor port is taken: it says so and exits, instead of reaching whatever holds the
// port and announcing "Cadenza is running".
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('npm start', () => {
  it('D4 a taken editor port is named, with how to choose another, and nothing starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cadenza-start-'));
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const child = spawn(process.execPath, [resolve(__dirname, '../../scripts/start.js')], { env: { ...process.env, PORT: String(port), CADENZA_USER_DIR: dir } });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const code = await new Promise((r) => child.once('exit', r));
      expect(code).toBe(1);
      expect(out).toContain(`Port ${port} is in use: another \`npm start\` may be running. Set PORT, SMTP_PORT or MAIL_PORT to use others.`);
      expect(out).not.toMatch(/Cadenza is running/);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
