// The package on a Node.js without node:sqlite (20.x, the machine's own /usr/bin/node): it must load,
// run a postgres:// store, and say in the log, the node status and the CLI why the embedded store
// cannot open — never crash with ERR_UNKNOWN_BUILTIN_MODULE. Runs the built package (dist/) in a child
// process under that Node, as a Node-RED on Node 20 would load it.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port';

const root = resolve(__dirname, '../..');
const OLD_NODE = process.env.CADENZA_OLD_NODE ?? '/usr/bin/node';
const MESSAGE = /Cadenza's embedded store needs Node\.js ≥ 22\.13 \(this is 20\.x\); use a postgres:\/\/ store or upgrade/;

function major(bin: string): number | undefined {
  const r = spawnSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim().split('.')[0]) : undefined;
}
const oldMajor = major(OLD_NODE);
const haveOld = oldMajor === 20;
if (!haveOld) console.warn(`[old-node] skipped: ${OLD_NODE} is ${oldMajor ? `Node ${oldMajor}` : 'missing'}, not Node 20 (set CADENZA_OLD_NODE to a Node 20 binary)`);

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!haveOld)('on Node 20 (no node:sqlite)', () => {
  it('D4 the package and every node module load; opening the embedded store gives the clear message', () => {
    const script = `
      const pkg = require(${JSON.stringify(join(root, 'dist/engine/index.js'))});
      const manifest = require(${JSON.stringify(join(root, 'package.json'))});
      for (const f of Object.values(manifest['node-red'].nodes)) require(${JSON.stringify(root)} + '/' + f);
      for (const f of manifest.n8n.nodes) require(${JSON.stringify(root)} + '/' + f);
      const { openStore } = require(${JSON.stringify(join(root, 'dist/engine/store/open.js'))});
      const pgStore = openStore('postgres://u:p@127.0.0.1:1/x', '/tmp'); // built, not connected: needs no SQLite
      let err;
      try { new pkg.SqliteStore(':memory:'); } catch (e) { err = e; }
      console.log(JSON.stringify({ pg: pgStore.constructor.name, code: err && err.code, message: err && err.message }));`;
    const out = JSON.parse(execFileSync(OLD_NODE, ['-e', script], { encoding: 'utf8' }).trim().split('\n').pop()!);
    expect(out.pg).toBe('PostgresStore');
    expect(out.code).toBe('node_version');
    expect(out.message).toMatch(MESSAGE);
  });

  it('D4 the CLI prints the message and exits 1', () => {
    const r = spawnSync(OLD_NODE, [join(root, 'bin/cadenza.js'), 'simulate', join(root, 'flows/cadences/sales-ready-lead.json')], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(MESSAGE);
    expect(r.stderr).not.toMatch(/ERR_UNKNOWN_BUILTIN_MODULE|at .*\.js:\d+/);
  });

  it('D4 a Node-RED 4 on Node 20 logs the message for the engine node and the cadence trigger (its status text)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cadenza-node20-'));
    dirs.push(dir);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('../../scripts/dev-env.js').prepareUserDir(dir);
    const flows = [
      { id: 'tab1', type: 'tab', label: 'n20' },
      { id: 'eng1', type: 'cadenza-config', name: 'engine' },
      { id: 'trig1', type: 'cadenza-trigger', z: 'tab1', engine: 'eng1', name: 'leads', module: 'Leads', mode: 'manual', wires: [[]] },
    ];
    writeFileSync(join(dir, 'flows.json'), JSON.stringify(flows));
    writeFileSync(join(dir, 'settings.js'), `module.exports = { flowFile: 'flows.json', uiHost: '127.0.0.1', telemetry: { enabled: false } };\n`);
    const port = await freePort();
    const red = spawn(OLD_NODE, [require.resolve('node-red/red.js', { paths: [root] }), '--userDir', dir, '--port', String(port), '--settings', join(dir, 'settings.js'), 'flows.json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    red.stdout!.on('data', (b) => (log += b));
    red.stderr!.on('data', (b) => (log += b));
    try {
      // Real time here: a separate Node-RED process starting; the wait ends as soon as the flows started.
      const until = Date.now() + 60_000;
      while (!/Started flows/.test(log) && red.exitCode === null && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(log).toMatch(/Started flows/);
      expect(log).not.toMatch(/ERR_UNKNOWN_BUILTIN_MODULE/);
      expect(log).toMatch(new RegExp(`\\[cadenza-config:engine\\].*${MESSAGE.source}`));
      expect(log).toMatch(new RegExp(`\\[cadenza-trigger:leads\\].*${MESSAGE.source}`));
    } finally {
      red.kill('SIGINT');
      await new Promise((r) => red.once('exit', r));
    }
  });
});
