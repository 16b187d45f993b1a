// `node scripts/n8n-server.js start`: the real-server suite's set-up, kept running for a person to try.
// Embedded PostgreSQL, n8n 2.41.1 with this package as a community node, an SMTP sink with a page to
// read it, an owner account, the two credentials, and the sales-ready example imported and published.
'use strict';
const { spawn } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const server = require('./n8n-server.js');
const { startSmtpSink, startMailViewer } = require('./dev-env.js');

const TRACKING_WEBHOOK = '0c7d9e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f';
const OWNER = { email: 'owner@cadenza.test', password: 'Cadenza-e2e-1' };

function startPostgres() {
  const child = spawn(process.execPath, [join(server.root, 'test', 'fixtures', 'pg-server.mjs'), '[]'], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`embedded PostgreSQL exited (${code})`)));
    child.stdout.once('data', (d) => resolve({ url: JSON.parse(d.toString()).url, child }));
  });
}

async function main() {
  const port = Number(process.env.N8N_PORT || 5678);
  const dir = server.installN8n();
  const userFolder = mkdtempSync(join(tmpdir(), 'cadenza-n8n-try-'));
  const pg = await startPostgres();
  const sink = await startSmtpSink(Number(process.env.SMTP_PORT || 2525));
  await startMailViewer(sink, port + 1);
  server.installCadenza(userFolder);
  const n8n = await server.startN8n({ dir, userFolder, port, dbUrl: await server.ensureDatabase(pg.url, 'n8n'), env: { N8N_DISABLED_MODULES: 'mcp-registry' } });
  const rest = server.restClient(n8n.url);
  await rest.signIn(OWNER.email, OWNER.password);
  const base = `${n8n.url}/webhook/${TRACKING_WEBHOOK}`;
  const cadenza = await rest.call('POST', '/credentials', { name: 'Cadenza Engine', type: 'cadenzaApi', data: { storePath: await server.ensureDatabase(pg.url, 'cadenza'), timezone: 'UTC', sender: 'sales@acme.test', baseUrl: base } });
  const smtp = await rest.call('POST', '/credentials', { name: 'SMTP sink', type: 'smtp', data: { user: '', password: '', host: '127.0.0.1', port: sink.port, secure: false, disableStartTls: true } });
  const wf = JSON.parse(readFileSync(join(server.root, 'flows', 'n8n', 'sales-ready-lead.json'), 'utf8'));
  for (const n of wf.nodes) {
    if (n.credentials?.cadenzaApi) n.credentials.cadenzaApi = { id: cadenza.id, name: cadenza.name };
    if (n.credentials?.smtp) n.credentials.smtp = { id: smtp.id, name: smtp.name };
  }
  const created = await rest.call('POST', '/workflows', { name: wf.name, nodes: wf.nodes, connections: wf.connections, settings: wf.settings, active: false });
  await rest.call('POST', `/workflows/${created.id}/activate`, { versionId: created.versionId });
  console.log(`n8n:        ${n8n.url}/  (log in as ${OWNER.email} / ${OWNER.password})
workflow:   ${n8n.url}/workflow/${created.id}  (published; its triggers go live within seconds)
mail sink:  http://127.0.0.1:${port + 1}/  (SMTP 127.0.0.1:${sink.port})
try:        curl -X POST ${n8n.url}/webhook/lead -H 'Content-Type: application/json' \\
              -d '{"First_Name":"Ada","Last_Name":"Lovelace","Email":"ada@example.com","Company":"Analytical Ltd"}'
Ctrl-C stops everything (the database and the user folder are thrown away).`);
  const stop = async () => {
    await n8n.stop();
    pg.child.stdin.end();
    rmSync(userFolder, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

module.exports = { main };
