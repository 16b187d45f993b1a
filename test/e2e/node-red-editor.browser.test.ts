// The Node-RED 5 editor in headless Chromium (Debian's chromium, driven by playwright-core) against a
// real Node-RED process with the package installed: what a user does in the editor (edit a branch,
// put a core delay node on a cadence wire, edit a step leads wait on, deploy, restart) and what the
// runtime then holds, read through the Admin API and the engine's SQLite file. Engine time is a file
// clock that never moves here; the only waiting is for browser elements and the HTTP server.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { DatabaseSync } from 'node:sqlite';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port';

/* eslint-disable @typescript-eslint/no-require-imports */
const env = require('../../scripts/dev-env.js');
const T0 = Date.parse('2026-03-02T10:00:00Z'); // a Monday
const ARTIFACTS = join(__dirname, '../../.tmp/artifacts');
type FlowNode = Record<string, any>;
declare const RED: any; // the editor's global, inside page.evaluate
declare const $: any;

describe(`Node-RED ${require('node-red-5/package.json').version} editor in Chromium`, () => {
  let dir: string;
  let port: number;
  let red: ChildProcess | null = null;
  let browser: Browser;
  const url = (p: string) => `http://127.0.0.1:${port}${p}`;

  async function startRed() {
    red = env.startNodeRed({ userDir: dir, port, settingsFile: join(dir, 'settings.js'), stdio: 'ignore', version: 'node-red-5' });
    await env.waitForHttp(url('/settings'), undefined, red);
  }
  async function stopRed() {
    const r = red!;
    red = null;
    await new Promise((done) => {
      r.once('exit', done);
      r.kill('SIGTERM');
    });
  }
  const deployed = async (): Promise<FlowNode[]> => (await (await fetch(url('/flows'))).json()) as FlowNode[];
  const node = async (id: string) => (await deployed()).find((n) => n.id === id)!;
  const db = <T>(sql: string, ...args: string[]): T[] => {
    const d = new DatabaseSync(join(dir, 'cadenza.db'), { readOnly: true });
    try {
      return d.prepare(sql).all(...args) as T[];
    } finally {
      d.close();
    }
  };
  const enrollments = () => db<{ state: string }>("SELECT json_set(state, '$.status', status, '$.reason', reason, '$.recordId', record_id) AS state FROM enrollments WHERE cadence_id = 'trig-sales' ORDER BY id").map((r) => JSON.parse(r.state));
  const until = async (what: string, fn: () => Promise<boolean> | boolean, ms = 60_000) => {
    const end = Date.now() + ms;
    while (!(await fn())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  async function openEditor(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.goto(url('/'));
    await page.waitForFunction(() => typeof RED !== 'undefined' && RED.nodes?.node('responded') && RED.nodes.node('trig-sales'), undefined, { timeout: 60_000 });
    return page;
  }
  async function openNode(page: Page, id: string) {
    await page.evaluate((nodeId) => RED.editor.edit(RED.nodes.node(nodeId)), id);
    await page.locator('#node-dialog-ok').waitFor();
    await settled(page.locator('.red-ui-tray').first());
  }
  /** Waits until an element stops moving (trays slide in, notifications drop down) before using or shooting it. */
  async function settled(el: ReturnType<Page['locator']>) {
    let last = '';
    for (;;) {
      const box = JSON.stringify(await el.boundingBox());
      if (box === last) return;
      last = box;
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  /** Deploy as the user does (the result is awaited by each test, through the Admin API). */
  async function clickDeploy(page: Page) {
    await page.locator('#red-ui-header-button-deploy').click();
  }
  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `node-red-${name}.png`) });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cadenza-editor-'));
    mkdirSync(ARTIFACTS, { recursive: true });
    env.prepareUserDir(dir);
    port = await freePort();
    writeFileSync(join(dir, 'clock.txt'), '0');
    writeFileSync(join(dir, 'settings.js'), `module.exports = {
      uiPort: ${port},
      flowFile: 'flows.json',
      credentialSecret: 'editor-test',
      logging: { console: { level: 'warn' } },
      telemetry: { enabled: false },
      editorTheme: { tours: false, projects: { enabled: false } },
      cadenza: { clock: require(${JSON.stringify(join(__dirname, '../fixtures/file-clock.js'))})(${JSON.stringify(join(dir, 'clock.txt'))}, ${T0}) },
    };\n`);
    // The sales example as shipped, except that the welcome email waits two days: leads then wait on it.
    const flows = env.exampleFlows({ pollMs: 50 })
      .filter((n: FlowNode) => n.z === 'tab-sales' || n.id === 'tab-sales' || n.type === 'cadenza-config')
      .map((n: FlowNode) => (n.id === 'welcome' ? { ...n, delay: 2 } : n));
    writeFileSync(join(dir, 'flows.json'), JSON.stringify(flows));
    await startRed();
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    await until('the cadence to be published', () => db<{ status: string }>("SELECT status FROM cadences WHERE id = 'trig-sales'")[0]?.status === 'active');
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    if (red) await stopRed();
    rmSync(dir, { recursive: true, force: true });
  });

  it('C6 F2 reordering and removing outcomes keeps each output wired to its own path, as the core switch does', async () => {
    expect((await node('responded')).wires).toEqual([['call-replied'], ['glad'], ['bump']]);
    const page = await openEditor();
    // Reorder: drag "opened" above "replied" by its handle.
    await openNode(page, 'responded');
    const rows = page.locator('#node-input-outcome-container > li');
    await expect(rows.count()).resolves.toBe(2);
    await shot(page, 'branch');
    const handle = (i: number) => rows.nth(i).locator('.red-ui-editableList-item-handle');
    const from = (await handle(1).boundingBox())!;
    const to = (await handle(0).boundingBox())!;
    await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await page.mouse.down();
    await page.mouse.move(from.x + from.width / 2, from.y + 2, { steps: 5 });
    await page.mouse.move(to.x + to.width / 2, to.y - 5, { steps: 20 });
    await page.mouse.up();
    await expect(rows.nth(0).locator('select').inputValue()).resolves.toBe('opened');
    await page.locator('#node-dialog-ok').click();
    await clickDeploy(page);
    await until('the reordered branch to deploy', async () => (await node('responded')).outcomes.join() === 'opened,replied');
    expect((await node('responded')).wires).toEqual([['glad'], ['call-replied'], ['bump']]);

    // Remove "replied" (now second): "opened" keeps the case study, the timeout keeps the bump.
    await openNode(page, 'responded');
    await expect(rows.nth(1).locator('select').inputValue()).resolves.toBe('replied');
    await rows.nth(1).locator('.red-ui-editableList-item-remove').click();
    await page.waitForFunction(() => $('#node-input-outcome-container > li').length === 1); // it fades out
    await page.locator('#node-dialog-ok').click();
    await clickDeploy(page);
    // The reply path's call is now cut off: Node-RED's deploy warning lists it (the engine's check); deploy anyway.
    const invalid = page.locator('.red-ui-deploy-dialog-confirm-list');
    await invalid.waitFor({ timeout: 60_000 });
    await expect(invalid.textContent()).resolves.toBe('[Sales-ready leads] Call: they replied (cadenza-followup)');
    await page.locator('#red-ui-deploy-dialog-confirm-deploy-deploy').click();
    await until('the branch without "replied" to deploy', async () => (await node('responded')).outcomes.join() === 'opened');
    const branch = await node('responded');
    expect(branch.wires).toEqual([['glad'], ['bump']]);
    expect(branch.outputs).toBe(2);
    // The engine published what the wires say: opened -> case study, timeout -> bump, no reply path. The
    // publish follows the deploy (flows:started), so wait for the version whose branch lists only "opened".
    const latest = () => JSON.parse(db<{ definition: string }>("SELECT definition FROM cadence_versions WHERE cadence_id = 'trig-sales' ORDER BY version DESC LIMIT 1")[0].definition);
    await until('the new version to be published', async () => latest().nodes.find((n: FlowNode) => n.id === 'responded')?.outcomes?.join() === 'opened');
    const edges = latest().edges.filter((e: FlowNode) => e.from === 'responded');
    expect(edges).toEqual([{ from: 'responded', port: 'opened', to: 'glad' }, { from: 'responded', port: 'timeout', to: 'bump' }]);
    await page.close({ runBeforeUnload: false });
  }, 240_000);

  it('F1 C5 a core delay node between trigger and first step is named before deploy, with what to do', async () => {
    const page = await openEditor();
    // The Node-RED habit: a delay node in front of the first step.
    await page.evaluate(() => {
      RED.view.importNodes([{ id: 'wait', type: 'delay', z: 'tab-sales', name: 'wait 2 days', pauseType: 'delay', timeout: '2', timeoutUnits: 'days', rate: '1', nbRateUnits: '1', rateUnits: 'second', randomFirst: '1', randomLast: '5', randomUnits: 'seconds', drop: false, allowrate: false, outputs: 1, x: 300, y: 400, wires: [['welcome']] }], { generateIds: false, addFlow: false });
      const trigger = RED.nodes.node('trig-sales');
      RED.nodes.filterLinks({ source: trigger }).forEach((l: unknown) => RED.nodes.removeLink(l));
      RED.nodes.addLink({ source: trigger, sourcePort: 0, target: RED.nodes.node('wait') });
      RED.nodes.addLink({ source: RED.nodes.node('wait'), sourcePort: 0, target: RED.nodes.node('welcome') });
      Object.assign(RED.nodes.node('wait'), { x: 420, y: 300, dirty: true });
      $('.red-ui-notification').remove(); // the "Imported" notice, out of the screenshot
      RED.nodes.dirty(true);
      RED.view.redraw(true);
    });
    await page.waitForFunction(() => RED.nodes.node('wait')?.valid === false, undefined, { timeout: 60_000 });
    const onDelay: string = await page.evaluate(() => RED.nodes.node('wait').validationErrors.join('\n'));
    expect(onDelay).toContain('F1 wires');
    expect(onDelay).toContain('"Sales-ready lead"');
    expect(onDelay).toContain('"Welcome email"');
    expect(onDelay).toContain("use the step's After field");
    const onTrigger: string = await page.evaluate(() => RED.nodes.node('trig-sales').validationErrors.join('\n'));
    expect(onTrigger).toContain("C5 nodes: must be a non-empty list with at least one follow-up — Wire the trigger's output straight to a Follow-up Step.");
    // Deploy: Node-RED's own warning lists the delay node among the misconfigured ones, before anything is deployed.
    const before = (await deployed()).length;
    await clickDeploy(page);
    const dialog = page.locator('.red-ui-deploy-dialog-confirm-list');
    await dialog.waitFor({ timeout: 60_000 });
    await expect(dialog.textContent()).resolves.toContain('wait 2 days');
    await settled(dialog);
    await shot(page, 'delay-named');
    expect((await deployed()).length).toBe(before);
    await page.close({ runBeforeUnload: false });
  }, 240_000);

  it('D4 the check route answers bad input with the field and the rule, and needs no HTML copy of a rule', async () => {
    const r = await fetch(url('/cadenza/check'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ flows: 'nope' }) });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ rule: 'D4', error: expect.stringContaining('flows') });
    const resume = await fetch(url('/cadenza/resume'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ cadenceId: 'trig-sales', records: [1] }) });
    expect(resume.status).toBe(400);
    expect(await resume.json()).toMatchObject({ rule: 'D4', error: expect.stringContaining('records') });
    // C6: a branch whose wires no longer match its outcomes is put on the branch, not a 400 for the whole check.
    const flows = JSON.parse(require('node:fs').readFileSync(join(__dirname, '../../flows/node-red/sales-ready-lead.json'), 'utf8'));
    flows.find((n: { id: string }) => n.id === 'responded').outcomes = ['replied'];
    const miswired = await fetch(url('/cadenza/check'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ flows }) });
    expect(miswired.status).toBe(200);
    expect((await miswired.json()).problems.responded).toEqual([expect.stringMatching(/^C6 wires: the branch has 3 wired outputs but 2 outcomes/)]);
    // F13: the engine node's settings, read as the engine will, are named on it before deploy (a bad one stops the engine).
    const badLimits = flows.map((n: { type: string }) => (n.type === 'cadenza-config' ? { ...n, contactLimits: '[{"channel": "emial", "max": 0, "days": 1}]' } : n));
    const engineProblems = await (await fetch(url('/cadenza/check'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ flows: badLimits }) })).json();
    expect(engineProblems.problems['cadenza-engine']).toEqual([expect.stringMatching(/^F13 contactLimits\[0\]\.channel/), expect.stringMatching(/^F13 contactLimits\[0\]\.max/)]);
  });

  it('P2 D4 the report page is reached from Node-RED: a view key made from the config node, sign-in stays under /cadenza/', async () => {
    const bad = await fetch(url('/cadenza/keys'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ engine: 'nope' }) });
    expect(bad.status).toBe(404);
    expect(await bad.json()).toMatchObject({ rule: 'D4', error: expect.stringContaining('engine') });
    const page = await openEditor();
    await page.evaluate(() => RED.editor.editConfig('', 'cadenza-config', 'cadenza-engine'));
    await page.locator('#cadenza-report-key').click();
    const link = page.locator('#cadenza-report-key-out a');
    await link.waitFor({ timeout: 60_000 });
    const key = await page.locator('#cadenza-report-key-out code').textContent();
    expect(await link.getAttribute('href')).toBe('/cadenza/'); // the key never travels in a URL
    // Signing in posts the key; the answer sends the browser back under /cadenza/, not to the editor at /.
    const signIn = await fetch(url('/cadenza/'), { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `key=${encodeURIComponent(key!)}`, redirect: 'manual' });
    expect(signIn.status).toBe(303);
    expect(signIn.headers.get('location')).toBe('/cadenza/');
    await page.goto(url('/cadenza/'));
    await page.locator('input[name="key"]').fill(key!);
    await page.locator('form button').click();
    await page.waitForURL(url('/cadenza/'));
    await page.locator('section[data-cadence="trig-sales"] h2').waitFor({ timeout: 60_000 });
    await page.close({ runBeforeUnload: false });
  }, 240_000);

  it('V2 R1 editing a step leads wait on warns with the count before deploy, and "resume" resumes them on the new version', async () => {
    for (const name of ['ada', 'grace']) {
      const r = await fetch(url('/lead'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ First_Name: name, Email: `${name}@example.com` }) });
      expect(r.status).toBe(200);
    }
    await until('two leads waiting on the welcome email', () => enrollments().filter((e) => e.status === 'active' && e.position === 'welcome').length === 2);
    const page = await openEditor();
    // The badge: how many wait at the step and when the next is due (T0 + 2 days).
    await page.waitForFunction(() => /^2 waiting · next 4 Mar 10:00/.test(RED.nodes.node('welcome').status?.text ?? ''), undefined, { timeout: 60_000 });
    await shot(page, 'live-badge');
    await openNode(page, 'welcome');
    await page.locator('#node-input-subject').fill('{{First_Name}}, one question');
    await page.locator('#node-dialog-ok').click();
    await clickDeploy(page);
    const warning = page.locator('.cadenza-stop-warning');
    await warning.waitFor({ timeout: 60_000 });
    await expect(warning.textContent()).resolves.toContain('Deploying stops 2 enrollment(s)');
    await expect(page.locator('.red-ui-notification').filter({ has: warning }).textContent()).resolves.toContain('Welcome email: 2');
    await settled(warning);
    await shot(page, 'stop-warning');
    await page.locator('#cadenza-deploy-resume').click();
    // When the first test has left "Call: they replied" cut off, Node-RED's own warning follows: deploy anyway.
    const confirm = page.locator('#red-ui-deploy-dialog-confirm-deploy-deploy');
    const resumed = page.getByText('2 enrollment(s) resumed on the new version');
    const quiet = (p: Promise<void>) => p.catch(() => undefined); // the one that loses the race times out unseen
    await Promise.race([quiet(confirm.waitFor({ timeout: 60_000 })), quiet(resumed.waitFor({ timeout: 60_000 }))]);
    if (await confirm.isVisible()) await confirm.click();
    await resumed.waitFor({ timeout: 60_000 });
    const [{ active_version: version }] = db<{ active_version: number }>("SELECT active_version FROM cadences WHERE id = 'trig-sales'");
    const now = enrollments();
    expect(now.map((e) => [e.recordId, e.status, e.position, e.version])).toEqual([
      ['ada@example.com', 'active', 'welcome', version],
      ['grace@example.com', 'active', 'welcome', version],
    ]);
    expect((await node('welcome')).subject).toBe('{{First_Name}}, one question');
    await page.close({ runBeforeUnload: false });
  }, 240_000);

  it('V2 the keyboard\'s deploy (Ctrl+D) asks first too: cancelling it deploys nothing and stops no one', async () => {
    const page = await openEditor();
    await page.waitForFunction(() => /^2 waiting/.test(RED.nodes.node('welcome').status?.text ?? ''), undefined, { timeout: 60_000 });
    await openNode(page, 'welcome');
    await page.locator('#node-input-subject').fill('{{First_Name}}, a second question');
    await page.locator('#node-dialog-ok').click();
    await page.locator('#red-ui-workspace-chart').click({ position: { x: 5, y: 5 } }); // focus the canvas, as a user pressing the shortcut has it
    await page.keyboard.press('Control+d');
    const warning = page.locator('.cadenza-stop-warning');
    await warning.waitFor({ timeout: 60_000 });
    await expect(warning.textContent()).resolves.toContain('Deploying stops 2 enrollment(s)');
    await page.locator('.red-ui-notification').filter({ has: warning }).getByRole('button', { name: 'Cancel' }).click();
    await new Promise((r) => setTimeout(r, 1000));
    expect((await node('welcome')).subject).toBe('{{First_Name}}, one question');
    expect(enrollments().filter((e) => e.status === 'active').length).toBe(2);
    await page.close({ runBeforeUnload: false });
  }, 240_000);

  it('A1 D1 a step\'s badge still shows its waiting count after a restart', async () => {
    await stopRed();
    await startRed();
    const page = await openEditor();
    await page.waitForFunction(() => /^2 waiting · next /.test(RED.nodes.node('welcome').status?.text ?? ''), undefined, { timeout: 60_000 });
    const label = await page.evaluate(() => RED.utils.getNodeLabel(RED.nodes.node('call-bump')));
    expect(label).toBe('Call after the bump'); // named steps keep their names; unnamed ones say channel and delay
    const unnamed = await page.evaluate(() => RED.nodes.getType('cadenza-followup').label.call({ channel: 'call', delay: 2, delayUnit: 'businessDays', relativeTo: 'previous' }));
    expect(unnamed).toBe('Call step · +2 business d after previous');
    const icons = await page.evaluate(() => ['email', 'call', 'task', 'whatsapp'].map((channel) => RED.nodes.getType('cadenza-followup').icon.call({ channel })));
    expect(new Set(icons).size).toBe(4);
    // The body: Node-RED's code editor, a merge-field picker from the module's records, the engine's preview.
    await openNode(page, 'welcome');
    await page.locator('#cadenza-merge-field option[value="First_Name"]').waitFor({ state: 'attached', timeout: 60_000 });
    await page.locator('#cadenza-merge-field').selectOption('First_Name');
    expect(await page.evaluate(() => RED.nodes.node('welcome').bodyEditor.getValue())).toMatch(/^\{\{First_Name\}\}<p>Hi \{\{First_Name\}\},<\/p>/);
    await page.locator('#cadenza-preview-button').click();
    await page.locator('#cadenza-preview-meta').filter({ hasText: 'grace@example.com · grace, one question' }).waitFor({ timeout: 60_000 });
    await expect(page.frameLocator('#cadenza-preview-frame').locator('body').textContent()).resolves.toMatch(/^graceHi grace,/);
    await shot(page, 'step');
    await page.locator('#node-dialog-cancel').click();
    // Field checks in the editor come from the engine's parameter schema (and its own check function).
    const delayCheck = await page.evaluate(() => [3650, 3651, ''].map((v) => RED.nodes.getType('cadenza-followup').defaults.delay.validate.call({}, v, {})));
    expect(delayCheck).toEqual([true, 'delay must be at most 3650', true]);
    // F6 F13: the engine node's JSON settings survive the editor — a property named `users` would not (it
    // is where Node-RED lists a config node's users), so the user directory is stored under another name.
    const engineNode = await page.evaluate(() => {
      const n = RED.nodes.node('cadenza-engine');
      return { defaults: Object.keys(RED.nodes.getType('cadenza-config').defaults), users: Array.isArray(n.users) };
    });
    expect(engineNode.users).toBe(true);
    expect(engineNode.defaults).toEqual(expect.arrayContaining(['contactLimits', 'userDirectory']));
    expect(engineNode.defaults).not.toContain('users');
    const check = await page.evaluate(() => ['', '{"u1": {"name": "Ann"}}', '[1]', '{nope'].map((v) => RED.nodes.getType('cadenza-config').defaults.userDirectory.validate.call({}, v)));
    expect(check).toEqual([true, true, false, false]);
    await page.close({ runBeforeUnload: false });
  }, 240_000);
});
