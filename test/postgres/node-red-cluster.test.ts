// Scale-out at the host level: two Node-RED processes run the same example flow on one PostgreSQL
// (the config node's store is a postgres:// URL). Leads posted to either instance are mailed once over
// real SMTP; one instance is SIGKILLed and the other carries the cadence on alone; a restarted one
// joins again; nothing is sent twice. Time is a file clock both processes read.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../helpers/free-port';
import { afterAll, describe, expect, it } from 'vitest';
import { freshPostgres } from '../helpers/harness';

/* eslint-disable @typescript-eslint/no-require-imports */
const env = require('../../scripts/dev-env.js');

const T0 = Date.parse('2026-03-02T10:00:00Z'); // a Monday
const DAY = 86_400_000;

const waitUntil = async (what: string, fn: () => boolean | Promise<boolean>, ms = 20_000) => {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50)); // waiting on other processes; engine time is the file clock
  }
};

interface Instance {
  port: number;
  dir: string;
  proc: ChildProcess | null;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

describe('Node-RED scale-out on PostgreSQL', () => {
  it('D1 D2 E1 two Node-RED instances share one store: each lead mailed once, one instance killed, the other carries on, nothing doubled', async () => {
    const pgUrl = await freshPostgres();
    const root = mkdtempSync(join(tmpdir(), 'cadenza-cluster-'));
    cleanup.push(() => rmSync(root, { recursive: true, force: true }));
    const clockFile = join(root, 'clock.txt');
    const setClock = (ms: number) => writeFileSync(clockFile, String(ms));
    setClock(0);
    const sink = await env.startSmtpSink(0);
    cleanup.push(() => sink.close());
    const db = new pg.Pool({ connectionString: pgUrl, max: 2 });
    cleanup.push(() => db.end());
    const q = async (sql: string, args: unknown[] = []) => (await db.query(sql, args)).rows;

    // The same flow in both user directories, its engine on the shared database.
    const flows = env.exampleFlows({ smtpPort: sink.port, pollMs: 50 })
      .filter((n: any) => n.z === 'tab-sales' || n.id === 'tab-sales' || n.type === 'cadenza-config')
      .map((n: any) => (n.type === 'cadenza-config' ? { ...n, storePath: pgUrl } : n));
    const instances: Instance[] = [];
    for (const name of ['a', 'b']) {
      const dir = env.prepareUserDir(join(root, name));
      const port = await freePort();
      writeFileSync(join(dir, 'settings.js'), `module.exports = {
        uiPort: ${port}, flowFile: 'flows.json', credentialSecret: 'cluster', logging: { console: { level: 'warn' } },
        cadenza: { clock: require(${JSON.stringify(join(__dirname, '../fixtures/file-clock.js'))})(${JSON.stringify(clockFile)}, ${T0}) },
      };\n`);
      writeFileSync(join(dir, 'flows.json'), JSON.stringify(flows));
      instances.push({ port, dir, proc: null });
    }
    const start = async (i: Instance) => {
      i.proc = env.startNodeRed({ userDir: i.dir, port: i.port, settingsFile: join(i.dir, 'settings.js'), stdio: 'ignore', version: 'node-red' });
      await env.waitForHttp(`http://127.0.0.1:${i.port}/settings`, undefined, i.proc);
    };
    const kill = async (i: Instance) => {
      const p = i.proc!;
      i.proc = null;
      await new Promise((done) => {
        p.once('exit', done);
        p.kill('SIGKILL');
      });
    };
    cleanup.push(async () => {
      for (const i of instances) if (i.proc) await kill(i);
    });
    // Both boot at once, as a scaled-out deployment does: each deploys the cadence; one publishes it
    // (the race itself is the engine test "V1 instances deploying the same definition at once").
    await Promise.all(instances.map(start));
    await waitUntil('the cadence to be active', async () => (await q("SELECT status FROM cadences WHERE id = 'trig-sales'").catch(() => []))[0]?.status === 'active');
    expect(await q('SELECT version FROM cadence_versions')).toEqual([{ version: 1 }]);

    // Six leads, posted to either instance.
    const people = ['ada', 'grace', 'alan', 'edsger', 'barbara', 'donald'];
    for (const [k, name] of people.entries()) {
      const r = await fetch(`http://127.0.0.1:${instances[k % 2].port}/lead`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ First_Name: name, Last_Name: 'X', Email: `${name}@example.com`, Company: `${name} Co` }),
      });
      expect((await r.json()).enrollments[0]).toMatchObject({ status: 'enrolled' });
    }
    await sink.waitFor((m: unknown[]) => m.length === 6);
    // Both schedulers keep polling the same rows: once every outbox row is done, none can be sent again.
    await waitUntil('every welcome acknowledged', async () => (await q("SELECT COUNT(*)::int AS n FROM outbox WHERE status = 'done'"))[0].n === 6);
    expect(sink.messages.map((m: any) => m.to).sort()).toEqual(people.map((p) => `${p}@example.com`).sort());

    // Instance a dies; days pass; b sends every follow-up that falls due.
    await kill(instances[0]);
    setClock(4 * DAY);
    await sink.waitFor((m: unknown[]) => m.length === 12);
    await waitUntil('the bumps acknowledged', async () => (await q("SELECT COUNT(*)::int AS n FROM outbox WHERE status = 'done'"))[0].n === 12);
    for (const p of people) expect(sink.messages.filter((m: any) => m.to === `${p}@example.com`).map((m: any) => m.subject)).toEqual([`${p}, thanks for your interest`, `Re: ${p}, thanks for your interest`]);

    // a comes back; both run to the end of the cadence; still nothing doubled.
    await start(instances[0]);
    setClock(10 * DAY);
    await waitUntil('every enrollment to finish', async () => (await q("SELECT COUNT(*)::int AS n FROM enrollments WHERE status = 'completed'"))[0].n === 6);
    expect(sink.messages).toHaveLength(12);
    expect(new Set(sink.messages.map((m: any) => m.messageId)).size).toBe(12);
    // Every action (the emails, and the call tasks the cadence ends with) was handed over and acknowledged.
    expect(await q("SELECT channel, status, COUNT(*)::int AS n FROM outbox GROUP BY 1, 2 ORDER BY 1")).toEqual([{ channel: 'call', status: 'done', n: 6 }, { channel: 'email', status: 'done', n: 12 }]);
  }, 180_000);
});
