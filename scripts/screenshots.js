// The README's pictures, made from what `npm start` runs: the Node-RED editor with the example flows,
// and Cadenza's report page after a few leads. `npm run build && node scripts/screenshots.js` (needs
// Chromium: CHROMIUM_PATH or /usr/bin/chromium). Writes docs/img/*.png.
'use strict';
const { execFileSync } = require('node:child_process');
const { mkdirSync, mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { chromium } = require('playwright-core');
const { prepareUserDir, exampleFlows, startSmtpSink, startNodeRed, waitForHttp, root } = require('./dev-env');

async function main() {
  const dir = prepareUserDir(mkdtempSync(join(tmpdir(), 'cadenza-shots-')));
  const out = join(root, 'docs/img');
  mkdirSync(out, { recursive: true });
  const sink = await startSmtpSink(0);
  writeFileSync(join(dir, 'flows.json'), JSON.stringify(exampleFlows({ smtpPort: sink.port })));
  writeFileSync(join(dir, 'settings.js'), "module.exports = { flowFile: 'flows.json', uiHost: '127.0.0.1', telemetry: { enabled: false }, editorTheme: { tours: false } };\n");
  const port = 18800 + Math.floor(Math.random() * 100);
  const red = startNodeRed({ userDir: dir, port, settingsFile: join(dir, 'settings.js'), stdio: 'ignore' });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    await waitForHttp(`http://127.0.0.1:${port}/settings`, undefined, red);
    for (const [first, last, email] of [['Ada', 'Lovelace', 'ada@example.com'], ['Grace', 'Hopper', 'grace@example.com'], ['Alan', 'Turing', 'alan@example.com']]) {
      await fetch(`http://127.0.0.1:${port}/lead`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ First_Name: first, Last_Name: last, Email: email, Company: `${last} Ltd` }) });
    }
    const key = execFileSync(process.execPath, [join(root, 'bin/cadenza.js'), 'keys', 'create', '--name', 'shots', '--scopes', 'view', '--store', `sqlite:${join(dir, 'cadenza.db')}`], { encoding: 'utf8' }).split('\n')[0];
    const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('.red-ui-flow-node', { timeout: 30000 });
    await page.waitForTimeout(1500); // node status dots arrive after the canvas
    await page.screenshot({ path: join(out, 'node-red-editor.png') });
    await page.goto(`http://127.0.0.1:${port}/cadenza/cadenza/?key=${encodeURIComponent(key)}`);
    await page.waitForSelector('section[data-cadence]', { timeout: 30000 });
    // The cadence the leads went into (the others are empty in a fresh playground).
    await page.locator('section[data-cadence="trig-sales"]').screenshot({ path: join(out, 'report-page.png') });
    console.log(`wrote ${join(out, 'node-red-editor.png')} and ${join(out, 'report-page.png')}`);
  } finally {
    await browser.close();
    red.kill('SIGINT');
    await sink.close();
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
