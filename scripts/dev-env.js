// A local Node-RED with this package installed, and an SMTP sink whose messages can be seen.
// Used by `npm start` and by the end-to-end test, so what a user runs is what the test proves.
'use strict';
const { spawn } = require('node:child_process');
const { appendFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, lstatSync } = require('node:fs');
const http = require('node:http');
const { join, resolve } = require('node:path');

const root = resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function link(target, path) {
  mkdirSync(resolve(path, '..'), { recursive: true });
  try {
    lstatSync(path);
  } catch {
    symlinkSync(target, path, 'dir');
  }
}

/** A Node-RED user directory with this package (and the e-mail node) installed as Node-RED sees packages. */
function prepareUserDir(dir) {
  mkdirSync(dir, { recursive: true });
  link(root, join(dir, 'node_modules', ...pkg.name.split('/')));
  link(join(root, 'node_modules', 'node-red-node-email'), join(dir, 'node_modules', 'node-red-node-email'));
  if (!existsSync(join(dir, 'package.json'))) {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'cadenza-dev', private: true, dependencies: { [pkg.name]: `file:${root}`, 'node-red-node-email': '*' } }, null, 2));
  }
  return dir;
}

/** The example flows, merged (one engine config node), pointed at the given SMTP port. */
function exampleFlows({ smtpPort = 2525, pollMs = 1000 } = {}) {
  const seen = new Set();
  const out = [];
  for (const f of ['sales-ready-lead.json', 'customer-onboarding.json', 'renewal.json']) {
    for (const n of JSON.parse(readFileSync(join(root, 'flows', 'node-red', f), 'utf8'))) {
      if (seen.has(n.id)) continue;
      seen.add(n.id);
      if (n.type === 'e-mail') n.port = String(smtpPort);
      if (n.type === 'cadenza-config') n.pollMs = pollMs;
      out.push(n);
    }
  }
  return out;
}

/**
 * An SMTP server on loopback that keeps every message, parsed, and can be waited on. With `file`, the
 * messages are kept there too (one JSON per line), so a restart of `npm start` shows what came before.
 */
async function startSmtpSink(port = 0, { file } = {}) {
  const { SMTPServer } = require('smtp-server');
  const { simpleParser } = require('mailparser');
  const messages = [];
  if (file && existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      try {
        if (line.trim()) messages.push(JSON.parse(line));
      } catch {
        // a line cut short by a crash: skip it, keep the rest
      }
    }
  }
  const waiters = [];
  let refusing = 0;
  let refused = 0;
  let slowMs = 0;
  const answering = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, done) {
      if (refusing > 0) {
        // A relay that is down for a while: the message is read and turned away with a temporary error.
        refusing--;
        refused++;
        stream.on('end', () => done(Object.assign(new Error('451 4.3.0 try again later'), { responseCode: 451 })));
        stream.resume();
        return;
      }
      simpleParser(stream)
        .then((m) => {
          const msg = {
            messageId: m.messageId, inReplyTo: m.inReplyTo, from: m.from?.text, to: m.to?.text, subject: m.subject,
            html: m.html || '', text: m.text || '', headers: Object.fromEntries(m.headers), date: new Date().toISOString(),
            // As sent, one line per header (the parsed `headers` above are structured, hard to read).
            rawHeaders: (m.headerLines || []).map((h) => h.line),
          };
          // A slow relay keeps the message and answers 250 a while later: the sender is still waiting.
          answering.push(msg.to);
          return new Promise((r) => setTimeout(r, slowMs)).then(() => {
            answering.splice(answering.indexOf(msg.to), 1);
            messages.push(msg);
            if (file) appendFileSync(file, JSON.stringify(msg) + '\n');
            for (const w of [...waiters]) w();
            done();
          });
        })
        .catch(done);
    },
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    port: server.server.address().port,
    messages,
    /** Turns away the next `n` messages with a temporary error (451), as a relay in trouble does. */
    refuse(n) {
      refusing = n;
    },
    get refused() {
      return refused;
    },
    /** The recipients of messages read and not answered yet (a slow relay's). */
    get answering() {
      return [...answering];
    },
    /** Answers each message `ms` after it was read (0: at once), as a slow relay does. */
    slow(ms) {
      slowMs = ms;
    },
    /** Resolves when `predicate(messages)` holds; rejects after `timeoutMs` of real time. */
    waitFor(predicate, timeoutMs = 20000) {
      return new Promise((resolvePromise, reject) => {
        const check = () => {
          if (predicate(messages)) {
            waiters.splice(waiters.indexOf(check), 1);
            clearTimeout(timer);
            resolvePromise(messages);
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`timed out waiting for mail; got ${messages.length}: ${messages.map((m) => `${m.to} "${m.subject}"`).join(', ')}`));
        }, timeoutMs);
        waiters.push(check);
        check();
      });
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

/**
 * A page listing what the sink received (the "see the emails" part of `npm start`), each message with
 * its subject, addresses and headers; the same as JSON under /api/messages for scripts.
 */
function startMailViewer(sink, port) {
  const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const json = (res, body, status = 200) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body, null, 2));
  };
  const page = (res, title, body) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}pre{white-space:pre-wrap}</style>${body}`);
  };
  const server = http.createServer((req, res) => {
    const url = req.url || '/';
    if (url === '/api/messages') return json(res, sink.messages.map((m, id) => ({ id, date: m.date, from: m.from, to: m.to, subject: m.subject, messageId: m.messageId })));
    const api = /^\/api\/messages\/(\d+)$/.exec(url);
    if (api) return sink.messages[Number(api[1])] ? json(res, { id: Number(api[1]), ...sink.messages[Number(api[1])] }) : json(res, { error: 'no such message' }, 404);
    const raw = /^\/(\d+)\/html$/.exec(url);
    if (raw && sink.messages[Number(raw[1])]) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': "default-src 'none'; img-src *; style-src 'unsafe-inline'" });
      return res.end(sink.messages[Number(raw[1])].html);
    }
    const one = /^\/(\d+)$/.exec(url);
    const m = one && sink.messages[Number(one[1])];
    if (m) {
      const headers = m.rawHeaders ? esc(m.rawHeaders.join('\n')) : esc(JSON.stringify(m.headers, null, 2));
      return page(res, m.subject, `<p><a href="/">all messages</a> · <a href="/api/messages/${one[1]}">JSON</a></p><h1>${esc(m.subject)}</h1>
<table><tr><th>from</th><td>${esc(m.from)}</td></tr><tr><th>to</th><td>${esc(m.to)}</td></tr><tr><th>received</th><td>${esc(m.date)}</td></tr></table>
${m.html ? `<h2>HTML</h2><iframe sandbox src="/${one[1]}/html" style="width:100%;height:24em;border:1px solid #ddd"></iframe>` : ''}
<h2>Plain text</h2><pre>${esc(m.text)}</pre><h2>Headers</h2><pre>${headers}</pre>`);
    }
    const rows = sink.messages.map((x, i) => `<tr><td>${esc(x.date)}</td><td>${esc(x.from)}</td><td>${esc(x.to)}</td><td><a href="/${i}">${esc(x.subject)}</a></td></tr>`).reverse().join('');
    page(res, 'Cadenza mail sink', `<meta http-equiv="refresh" content="5"><h1>Mail sink</h1><p>${sink.messages.length} message(s) received on SMTP 127.0.0.1:${sink.port} · <a href="/api/messages">JSON</a></p>
<table><tr><th>received</th><th>from</th><th>to</th><th>subject</th></tr>${rows}</table>`);
  });
  return new Promise((r) => server.listen(port, '127.0.0.1', () => r(server)));
}

/** Starts Node-RED (this repository's node-red dependency) as a child process on `port`. */
function startNodeRed({ userDir, port, settingsFile, flowsFile = 'flows.json', stdio = 'inherit', version = 'node-red' }) {
  const red = require.resolve(`${version}/red.js`, { paths: [root] });
  const args = [red, '--userDir', userDir, '--port', String(port)];
  if (settingsFile) args.push('--settings', settingsFile);
  args.push(flowsFile);
  const child = spawn(process.execPath, args, { stdio, env: { ...process.env, NODE_RED_ENABLE_PROJECTS: 'false' } });
  return child;
}

/**
 * Resolves once Node-RED answers on its admin API. Given the Node-RED child, it waits as long as the child lives
 * (a Raspberry Pi or a loaded machine can take a minute to load the palette) and rejects as soon as it exits,
 * saying so every 15 s meanwhile; without one, it gives up after timeoutMs.
 */
async function waitForHttp(url, timeoutMs = 30000, child) {
  const until = Date.now() + timeoutMs;
  const started = Date.now();
  let told = started;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    if (child && child.exitCode !== null) throw new Error(`Node-RED exited (code ${child.exitCode}) before ${url} answered; its log is above`);
    if (child && child.signalCode) throw new Error(`Node-RED was stopped (${child.signalCode}) before ${url} answered`);
    if (!child && Date.now() > until) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    if (child && Date.now() - told >= 15000) {
      told = Date.now();
      console.log(`  Node-RED is still starting (${Math.round((told - started) / 1000)} s)...`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

module.exports = { prepareUserDir, exampleFlows, startSmtpSink, startMailViewer, startNodeRed, waitForHttp, root };
