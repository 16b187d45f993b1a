// `npm start`: a local Node-RED with Cadenza installed, the example flows deployed, the embedded SQLite
// store, and an SMTP sink whose messages are listed on a web page.
'use strict';
const { existsSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { prepareUserDir, exampleFlows, startSmtpSink, startMailViewer, startNodeRed, waitForHttp, root } = require('./dev-env');

const EDITOR_PORT = Number(process.env.PORT || 1880);
const SMTP_PORT = Number(process.env.SMTP_PORT || 2525);
const VIEWER_PORT = Number(process.env.MAIL_PORT || 1881);
const HOST = process.env.CADENZA_HOST || '127.0.0.1';

function portFree(port, host) {
  return new Promise((resolve, reject) => {
    const probe = require('node:net').createServer();
    probe.once('error', reject);
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

async function main() {
  const userDir = prepareUserDir(process.env.CADENZA_USER_DIR || join(root, '.cadenza-dev'));
  const flowsFile = join(userDir, 'flows.json');
  if (!existsSync(flowsFile)) writeFileSync(flowsFile, JSON.stringify(exampleFlows({ smtpPort: SMTP_PORT }), null, 1));
  const settingsFile = join(userDir, 'settings.js');
  // Written by us (or by an earlier npm start, which had no uiHost and so listened on every interface):
  // rewritten; a settings file the user made their own is left alone.
  const ours = !existsSync(settingsFile) || /a local playground; set your own in production/.test(readFileSync(settingsFile, 'utf8'));
  if (ours) {
    writeFileSync(settingsFile, `// Written by npm start (rewritten while this line says so). The editor has no password here, so it
// listens on 127.0.0.1 only; CADENZA_HOST=0.0.0.0 npm start opens it to the network: set adminAuth first.
module.exports = {
  flowFile: 'flows.json',
  uiHost: process.env.CADENZA_HOST || '127.0.0.1',
  credentialSecret: 'cadenza-dev', // a local playground; set your own in production
  telemetry: { enabled: false },
  editorTheme: { tours: false, projects: { enabled: false } },
};\n`);
  }
  // Node-RED runs in a child: if its port is taken, the readiness check would reach whoever holds it. Ask first.
  await portFree(EDITOR_PORT, HOST);
  const sink = await startSmtpSink(SMTP_PORT, { file: join(userDir, 'mail-sink.jsonl') });
  const viewer = await startMailViewer(sink, VIEWER_PORT);
  const red = startNodeRed({ userDir, port: EDITOR_PORT, flowsFile, settingsFile });
  const stop = () => {
    red.kill('SIGINT');
    viewer.close();
    void sink.close();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  red.on('exit', (code) => {
    viewer.close();
    void sink.close();
    process.exitCode = code ?? 0;
  });
  await waitForHttp(`http://127.0.0.1:${EDITOR_PORT}/settings`, undefined, red);
  console.log(`
  Cadenza is running.
    Node-RED editor   http://${HOST === '0.0.0.0' ? '<this machine>' : HOST}:${EDITOR_PORT}/${HOST === '127.0.0.1' ? '   (this machine only: CADENZA_HOST=0.0.0.0 npm start opens it)' : ''}
    Mail sink         http://127.0.0.1:${VIEWER_PORT}/   (SMTP on 127.0.0.1:${SMTP_PORT}; JSON at /api/messages)
    Store             ${join(userDir, 'cadenza.db')}

  Try it:
    curl -X POST http://127.0.0.1:${EDITOR_PORT}/lead -H 'Content-Type: application/json' \\
      -d '{"First_Name":"Ada","Last_Name":"Lovelace","Email":"ada@example.com","Company":"Analytical Ltd"}'
  and watch the welcome email arrive in the mail sink within seconds (the sales example has no send
  window; the onboarding and renewal examples send on weekdays, in office hours, UTC).
  Dry-run a cadence without deploying:  npx cadenza simulate flows/cadences/sales-ready-lead.json
`);
}

main().catch((e) => {
  if (e && e.code === 'EADDRINUSE') console.error(`Port ${e.port} is in use: another \`npm start\` may be running. Set PORT, SMTP_PORT or MAIL_PORT to use others.`);
  else console.error(e);
  process.exitCode = 1;
});
