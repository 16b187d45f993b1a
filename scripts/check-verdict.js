// The suite's exit code must be its verdict (issue 7). Runs vitest with the project's configuration and
// global setup (both projects, embedded PostgreSQL included) on a fixture that fails on purpose — it must
// exit non-zero — and on one that passes — it must exit 0. Exits 1 if either is wrong.
'use strict';
const { spawnSync } = require('node:child_process');
const { join } = require('node:path');

const root = join(__dirname, '..');
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
let wrong = 0;
for (const [fixture, wantZero] of [['fails', false], ['passes', true]]) {
  const env = { ...process.env, CADENZA_VERDICT: fixture };
  const r = spawnSync(process.execPath, [vitest, 'run'], { cwd: root, env, encoding: 'utf8' });
  const ok = wantZero ? r.status === 0 : r.status !== 0 && r.status !== null;
  console.log(`verdict: ${fixture}.verdict.ts exited ${r.status}${r.signal ? ` (${r.signal})` : ''} — ${ok ? 'as it must' : `WRONG: it must exit ${wantZero ? '0' : 'non-zero'}`}`);
  if (!ok) {
    wrong++;
    process.stdout.write(r.stdout.slice(-4000));
    process.stderr.write(r.stderr.slice(-4000));
  }
}
process.exit(wrong ? 1 : 0);
