// `npm start`'s mail sink: what a new user looks at to see Cadenza's emails. A message shows its subject,
// addresses and headers, is there as JSON for scripts, and is still there after a restart.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/* eslint-disable @typescript-eslint/no-require-imports */
const env = require('../../scripts/dev-env.js');
const dir = mkdtempSync(join(tmpdir(), 'cadenza-sink-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One message over a plain SMTP conversation, as the e-mail node would send it. */
function send(port: number, lines: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const script = ['EHLO test', 'MAIL FROM:<cadenza@example.com>', 'RCPT TO:<ada@example.com>', 'DATA', [...lines, '.'].join('\r\n'), 'QUIT'];
    const s = connect(port, '127.0.0.1');
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      // Each reply ends with "NNN text\r\n"; answer it with the next command.
      while (/^\d{3} .*\r\n/m.test(buf)) {
        buf = buf.replace(/^[\s\S]*?^\d{3} .*\r\n/m, '');
        const next = script.shift();
        if (next !== undefined) s.write(next + '\r\n');
      }
    });
    s.on('close', () => resolve());
    s.on('error', reject);
  });
}

describe('npm start mail sink', () => {
  it('F6 shows subject and headers, answers JSON, and keeps messages across a restart', async () => {
    const file = join(dir, 'mail-sink.jsonl');
    const sink = await env.startSmtpSink(0, { file });
    await send(sink.port, ['From: cadenza@example.com', 'To: ada@example.com', 'Subject: Thanks, Ada', 'List-Unsubscribe: <http://x/u>', 'Content-Type: text/plain', '', 'Hi Ada,', '', 'See you.']);
    await sink.waitFor((m: unknown[]) => m.length === 1);
    await sink.close();

    const again = await env.startSmtpSink(0, { file });
    expect(again.messages.map((m: { subject: string }) => m.subject)).toEqual(['Thanks, Ada']);
    const viewer = await env.startMailViewer(again, 0);
    const base = `http://127.0.0.1:${viewer.address().port}`;
    try {
      const list = await (await fetch(`${base}/api/messages`)).json();
      expect(list).toEqual([expect.objectContaining({ id: 0, subject: 'Thanks, Ada', to: 'ada@example.com' })]);
      const one = await (await fetch(`${base}/api/messages/0`)).json();
      expect(one.text.trim()).toBe('Hi Ada,\n\nSee you.');
      expect(one.rawHeaders).toContain('List-Unsubscribe: <http://x/u>');
      const page = await (await fetch(`${base}/0`)).text();
      expect(page).toMatch(/<h1>Thanks, Ada<\/h1>/);
      expect(page).toMatch(/List-Unsubscribe: &lt;http:\/\/x\/u&gt;/);
      expect((await fetch(`${base}/api/messages/7`)).status).toBe(404);
    } finally {
      viewer.close();
      await again.close();
    }
  });
});
