// `cadenza serve` settings (edition limits, approved WhatsApp templates, retry policy) from flags and a
// config file, and `validate` saying when a WhatsApp template's approval is unknown. The served API is
// the real one, in a child process on a temporary SQLite file, as a user would start it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../engine/cli/main';
import { serveConfig } from '../../engine/cli/config';
import { CadenzaError } from '../../engine/model/errors';

const root = resolve(__dirname, '../..');
const bin = join(root, 'bin/cadenza.js');
const dir = mkdtempSync(join(tmpdir(), 'cadenza-serve-'));
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) {
    c.kill('SIGINT');
    if (c.exitCode === null) await new Promise((r) => c.once('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
});

const cli = async (args: string[]) => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
};
const cadence = (id: string, channel = 'email', extra: Record<string, unknown> = {}) => ({
  id, name: id, module: 'Leads', enrollment: { mode: 'manual' },
  nodes: [{ id: 's1', type: 'followUp', channel, ...(channel === 'whatsapp' ? { templateId: 'welcome_v1' } : { template: { subject: 'Hi', body: 'Hi' } }), ...extra }],
  edges: [{ from: 'trigger', to: 's1' }],
});

/** Starts `cadenza serve` with these arguments; resolves with its base URL once it says it is serving. */
function serve(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', ...args], { cwd: dir });
  children.push(child);
  let out = '';
  return new Promise((ok, fail) => {
    child.stdout.on('data', (b) => {
      out += b;
      const m = /serving on (http:\/\/[^/]+)\//.exec(out);
      if (m) ok(m[1]);
    });
    child.stderr.on('data', (b) => (out += b));
    child.once('exit', (code) => fail(new Error(`serve exited ${code}: ${out}`)));
  });
}

describe('cadenza serve settings', () => {
  it('C3 --edition and --max-active set the limits the served API enforces; the refusal names C3', async () => {
    const store = `sqlite:${join(dir, 'c3.db')}`;
    const key = spawnSync(process.execPath, [bin, 'keys', 'create', '--name', 'a', '--scopes', 'manageAutomation', '--store', store], { cwd: dir, encoding: 'utf8' }).stdout.split('\n')[0];
    const base = await serve(['--store', store, '--edition', 'standard', '--max-active', '1']);
    const post = (body: unknown) => fetch(`${base}/api/v1/cadences`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post(cadence('one'))).status).toBe(201);
    const refused = await post(cadence('two'));
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect((await refused.json()).error.rule).toBe('C3');
  });

  it('C4 a config file names the approved WhatsApp templates; the served API refuses any other', async () => {
    const store = `sqlite:${join(dir, 'c4.db')}`;
    const config = join(dir, 'cadenza.json');
    writeFileSync(config, JSON.stringify({ store, whatsappTemplates: ['welcome_v1'], retry: { holdMs: 3_600_000 } }));
    const key = spawnSync(process.execPath, [bin, 'keys', 'create', '--name', 'a', '--scopes', 'manageAutomation', '--store', store], { cwd: dir, encoding: 'utf8' }).stdout.split('\n')[0];
    const base = await serve(['--config', config]);
    const post = (body: unknown) => fetch(`${base}/api/v1/cadences`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post(cadence('ok', 'whatsapp'))).status).toBe(201);
    const refused = await (await post(cadence('nope', 'whatsapp', { templateId: 'promo_unapproved' }))).json();
    expect(refused.error.rule).toBe('C4');
    expect(refused.error.problems.map((p: { message: string }) => p.message).join()).toMatch(/"promo_unapproved" is not a pre-approved WhatsApp template/);
  });

  it('D4 C3 D6 bad settings are refused before anything opens, each naming its field and rule', () => {
    let e: CadenzaError | undefined;
    try {
      serveConfig({ edition: 'gold', 'max-active': '-1', 'retry-for': '0m', port: '99999' });
    } catch (x) {
      e = x as CadenzaError;
    }
    expect(e).toBeInstanceOf(CadenzaError);
    expect(e!.problems.map((p) => `${p.rule} ${p.field}`)).toEqual(['D4 port', 'C3 limits.edition', 'C3 limits.active', 'D6 retry.holdMs']);
  });

  it('F7 F6 F13 a config file\'s user directory and contact limits are checked like the hosts\' (same fields, same rules)', () => {
    const config = join(dir, 'users.json');
    writeFileSync(config, JSON.stringify({ users: { u1: { name: 'Ann', email: 'ann@example.com', signature: '<p>Ann</p>' } }, fatigue: { limits: [{ max: 1, days: 1 }] } }));
    expect(serveConfig({ config }).users).toEqual({ u1: { name: 'Ann', email: 'ann@example.com', signature: '<p>Ann</p>' } });
    writeFileSync(config, JSON.stringify({ users: { u1: { email: 'nope', signature: 7, phone: '1' } }, fatigue: { limits: [{ max: 0, days: 1, chanel: 'email' }] } }));
    let e: CadenzaError | undefined;
    try {
      serveConfig({ config });
    } catch (x) {
      e = x as CadenzaError;
    }
    // A misspelt key ("chanel") would silently widen a limit to every channel: refused like the others.
    expect(e!.problems.map((p) => `${p.rule} ${p.field}`)).toEqual(['F13 fatigue.limits[0].chanel', 'F13 fatigue.limits[0].max', 'F7 users.u1.email', 'F6 users.u1.signature', 'F7 users.u1.phone']);
  });

  it('D4 a misspelt flag is refused, naming it, instead of being ignored', () => {
    expect(() => serveConfig({ 'default-sender': 'sales@acme.example' })).toThrow(CadenzaError);
    try {
      serveConfig({ 'default-sender': 'sales@acme.example', sender: 'ok@acme.example' });
    } catch (x) {
      expect((x as CadenzaError).problems.map((p) => `${p.rule} ${p.field}`)).toEqual(['D4 --default-sender']);
    }
  });

  it('E2 D5 with only the README\'s flags (no --sender), a record matching the view is handed to --dispatch-url at once, delivered once', async () => {
    const got: { key: string; subject: string; from: string }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const a = JSON.parse(body);
        got.push({ key: String(req.headers['idempotency-key']), subject: a.email?.subject, from: a.email?.from });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const store = `sqlite:${join(dir, 'welcome.db')}`;
      const key = spawnSync(process.execPath, [bin, 'keys', 'create', '--name', 'a', '--scopes', 'manageAutomation', '--store', store], { cwd: dir, encoding: 'utf8' }).stdout.split('\n')[0];
      const base = await serve(['--store', store, '--dispatch-url', `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`]);
      const call = (method: string, path: string, body: unknown) => fetch(`${base}/api/v1${path}`, { method, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      expect((await call('POST', '/cadences', { ...cadence('welcome'), enrollment: { mode: 'view', view: 'Lead_Status = "Hot"' } })).status).toBe(201);
      expect(await (await call('PUT', '/records/Leads/L1', { Email: 'l1@example.com', Lead_Status: 'Hot' })).json()).toMatchObject({ recordId: 'L1' });
      for (let i = 0; i < 400 && !got.length; i++) await new Promise((r) => setTimeout(r, 25));
      expect(got).toEqual([{ key: 'welcome:L1:1:s1', subject: 'Hi', from: 'cadenza@localhost' }]);
    } finally {
      receiver.close();
    }
  });

  it('C4 validate says when a WhatsApp template approval is unknown, and checks it against a given list', async () => {
    const file = join(dir, 'wa.json');
    writeFileSync(file, JSON.stringify(cadence('wa', 'whatsapp')));
    const unknown = await cli(['validate', file]);
    expect(unknown.code).toBe(0);
    expect(unknown.err).toMatch(/note: C4 node "s1" templateId: approval of WhatsApp template "welcome_v1" is unknown/);
    expect((await cli(['validate', file, '--whatsapp-templates', 'welcome_v1'])).err).toBe('');
    const refused = await cli(['validate', file, '--whatsapp-templates', 'other_v2']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/C4 node "s1" templateId: "welcome_v1" is not a pre-approved WhatsApp template/);
  });
});
