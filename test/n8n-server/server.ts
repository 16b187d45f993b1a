// One real n8n 2.41.1 for the suite: embedded PostgreSQL (a database for n8n, one for the Cadenza
// store), the packed package installed as a community node, an SMTP sink that can refuse mail, and a
// signed-in REST session. Everything is driven as a user's browser would: REST API and webhooks.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import type { Store } from '../../engine/store/store';
import { freePort } from '../helpers/free-port';
import { startPgServer, type PgServer } from '../helpers/pg-process';

/* eslint-disable @typescript-eslint/no-require-imports */
const server = require('../../scripts/n8n-server.js');
const { simpleParser } = require('mailparser') as { simpleParser: (s: NodeJS.ReadableStream) => Promise<{ to?: { text: string } | { text: string }[]; subject?: string; html?: string | false; messageId?: string }> };
const { PostgresStore } = require('../../dist/engine/store/postgres/postgres-store.js') as typeof import('../../engine/store/postgres/postgres-store');

export interface Mail { to: string; subject: string; html: string; messageId?: string }

/** An SMTP server on loopback that keeps what it accepts and, while `refusing`, answers 451 to every recipient. */
export async function smtpSink() {
  const messages: Mail[] = [];
  let refused = 0;
  const state = { refusing: false };
  const smtp = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false,
    onRcptTo(_address, _session, callback) {
      if (!state.refusing) return callback();
      refused++;
      callback(Object.assign(new Error('mailbox busy, try again later'), { responseCode: 451 }));
    },
    onData(stream, _session, done) {
      simpleParser(stream).then((m) => {
        messages.push({ to: String(m.to && !Array.isArray(m.to) ? m.to.text : ''), subject: m.subject ?? '', html: m.html || '', messageId: m.messageId });
        done();
      }, done);
    },
  });
  const port = await freePort();
  await new Promise<void>((r) => smtp.listen(port, '127.0.0.1', () => r()));
  return {
    port, messages, state,
    refusedCount: () => refused,
    to: (address: string) => messages.filter((m) => m.to === address),
    close: () => new Promise<void>((r) => smtp.close(() => r())),
  };
}

/** Polls until `probe` returns something truthy; real time on a real server, so generous and without timing asserts. */
export async function eventually<T>(probe: () => Promise<T> | T, what: string, timeoutMs = 180_000): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export type Rest = { call(method: string, path: string, body?: unknown): Promise<any>; signIn(): Promise<void> };

export interface N8nServer {
  url: string;
  rest: Rest;
  sink: Awaited<ReturnType<typeof smtpSink>>;
  /** The Cadenza store the credential points at, opened by the test to read state (never to drive it). */
  store: Store;
  cadenzaCredential: { id: string; name: string };
  smtpCredential: { id: string; name: string };
  trackingWebhookId: string;
  logFile: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

const TRACKING_WEBHOOK = '0c7d9e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f';

export async function startN8nServer(): Promise<N8nServer> {
  const dir = server.installN8n();
  const pg: PgServer = await startPgServer([]);
  const userFolder = mkdtempSync(join(tmpdir(), 'cadenza-n8n-server-'));
  const logFile = process.env.CADENZA_N8N_KEEP_LOG ? join(tmpdir(), `cadenza-n8n-${Date.now()}.log`) : join(userFolder, 'n8n.log');
  const cleanups: (() => Promise<unknown> | unknown)[] = [() => pg.stop(), () => rmSync(userFolder, { recursive: true, force: true })];
  try {
    const n8nDb: string = await server.ensureDatabase(pg.url, 'n8n');
    const cadenzaDb: string = await server.ensureDatabase(pg.url, 'cadenza');
    server.installCadenza(userFolder);
    const sink = await smtpSink();
    cleanups.unshift(() => sink.close());
    const port = await freePort();
    // The Cadenza poll stays at its default (1 s); n8n's own network-bound modules are off (no internet here).
    const start = () => server.startN8n({ dir, userFolder, port, dbUrl: n8nDb, logFile, env: { N8N_DISABLED_MODULES: 'mcp-registry' } });
    let n8n = await start();
    cleanups.unshift(() => n8n.stop());
    const rest: Rest = server.restClient(n8n.url);
    await rest.signIn();
    const base = `${n8n.url}/webhook/${TRACKING_WEBHOOK}`;
    const cz = await rest.call('POST', '/credentials', { name: 'Cadenza Engine', type: 'cadenzaApi', data: { storePath: cadenzaDb, secret: 'e2e-secret', timezone: 'UTC', sender: 'sales@acme.test', baseUrl: base } });
    const smtp = await rest.call('POST', '/credentials', { name: 'SMTP sink', type: 'smtp', data: { user: '', password: '', host: '127.0.0.1', port: sink.port, secure: false, disableStartTls: true } });
    const store: Store = new PostgresStore(cadenzaDb, { max: 2 });
    cleanups.unshift(() => store.close());
    const out: N8nServer = {
      url: n8n.url, rest, sink, store, logFile, trackingWebhookId: TRACKING_WEBHOOK,
      cadenzaCredential: { id: cz.id, name: cz.name }, smtpCredential: { id: smtp.id, name: smtp.name },
      async stop() {
        await n8n.stop();
      },
      async restart() {
        await n8n.stop();
        n8n = await start();
        await rest.signIn();
      },
      async close() {
        for (const c of cleanups) await Promise.resolve().then(c).catch(() => undefined);
      },
    };
    return out;
  } catch (e) {
    for (const c of cleanups) await Promise.resolve().then(c).catch(() => undefined);
    throw e;
  }
}

/** A workflow of flows/n8n, its credentials pointed at the ones this server has. */
export function exampleWorkflow(s: N8nServer, file: string) {
  const wf = JSON.parse(readFileSync(join(__dirname, '../../flows/n8n', file), 'utf8'));
  for (const n of wf.nodes) {
    if (n.credentials?.cadenzaApi) n.credentials.cadenzaApi = s.cadenzaCredential;
    if (n.credentials?.smtp) n.credentials.smtp = s.smtpCredential;
  }
  return wf;
}

/** Imports a workflow and publishes (activates) it, as the editor's Import and Publish do. */
export async function importAndPublish(s: N8nServer, wf: { name: string; nodes: unknown[]; connections: unknown; settings?: unknown }) {
  const created = await s.rest.call('POST', '/workflows', { name: wf.name, nodes: wf.nodes, connections: wf.connections, settings: wf.settings ?? {}, active: false });
  const published = await s.rest.call('POST', `/workflows/${created.id}/activate`, { versionId: created.versionId });
  await livePublication(s, created.id, published.activeVersionId);
  return { id: created.id as string, versionId: published.activeVersionId as string };
}

/**
 * n8n 2.41 publishes through an outbox: the activate call returns before the triggers and webhooks of
 * the version are live. Waits until every trigger of that version reports activated; a trigger that
 * failed to activate fails the wait with n8n's message for it.
 */
export async function livePublication(s: N8nServer, id: string, versionId: string) {
  return eventually(async () => {
    const st = await s.rest.call('GET', `/workflows/${id}/publication-status`);
    const failed = (st.triggers ?? []).filter((t: { status: string }) => t.status === 'failed');
    if (st.status !== 'in_progress' && failed.length) throw new Error(`publication ${st.status}: ${failed.map((t: { errorMessage?: string }) => t.errorMessage).join('; ')}`);
    return st.status === 'published' && st.liveVersionId === versionId && st;
  }, `version ${versionId} of workflow ${id} to be live`);
}

/** Saves an edit of the workflow's nodes and publishes that version. */
export async function editAndPublish(s: N8nServer, id: string, edit: (node: any) => any) {
  const wf = await s.rest.call('GET', `/workflows/${id}`);
  const saved = await s.rest.call('PATCH', `/workflows/${id}`, { nodes: wf.nodes.map(edit), connections: wf.connections, versionId: wf.versionId });
  const published = await s.rest.call('POST', `/workflows/${id}/activate`, { versionId: saved.versionId });
  await livePublication(s, id, published.activeVersionId);
  return published;
}

export async function postJson(url: string, body: unknown) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: await r.json().catch(() => undefined) };
}
