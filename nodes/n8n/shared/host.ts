// The n8n host glue: one engine runtime per store per process, shared by every Cadenza node in it.
// Active Cadence Triggers register the cadences they serve; the scheduler claims work for those only
// (another process or an inactive workflow never receives them), and hands each due action to the
// trigger as one short execution (its result is that action's verdict), never one waiting execution per record.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { routeTo } from '../../../engine/model/formats/n8n';
import type { CadenceDefinition } from '../../../engine/model/types';
import { canonicalJson } from '../../../engine/model/validate';
import type { Clock } from '../../../engine/runtime/clock';
import { CannotRunError, Runtime, type DispatchedAction, type RuntimeEvent } from '../../../engine/runtime/runtime';
import { describeStore, openStore } from '../../../engine/store/open';
import { hostOptions } from '../../../engine/host/settings';
import type { Edition } from '../../../engine/runtime/limits';

export interface CadenzaCredentials {
  storePath?: string;
  secret?: string;
  timezone?: string;
  sender?: string;
  baseUrl?: string;
  edition?: Edition;
  addOns?: number;
  /** Comma-separated approved WhatsApp template ids; empty accepts any (C4). */
  whatsappTemplates?: string;
  retryHours?: number;
  /** F13: the engine's contact limits, as JSON. */
  contactLimits?: string;
  /** F6, F7: the user directory, as JSON. */
  users?: string;
}

export interface CadenzaItem {
  json: Record<string, unknown>;
}

/** Starts one execution with the items and settles when it ends: resolves if it succeeded, rejects if it failed. */
export type Emit = (items: CadenzaItem[]) => Promise<void>;

interface Served {
  def: CadenceDefinition;
  /** Hash of `def`: items carry it, so a node of a newer graph can tell the cadence is stale. */
  hash: string;
  emit: Emit;
}

/** How long one execution may take before its action counts as failed and is retried. */
const HAND_OFF_TIMEOUT_MS = 5 * 60_000;

/** Embedding and test hooks: a clock and "don't run the loop, I tick myself". */
const settings: { clock?: Clock; manualTick?: boolean; pollMs: number } = { pollMs: 1000 };
export function configureCadenza(s: { clock?: Clock; manualTick?: boolean; pollMs?: number }): void {
  Object.assign(settings, s);
}

/** Identifies a compiled graph: equal definitions (whatever their key order) hash equal. */
export const graphHash = (def: CadenceDefinition): string => createHash('sha256').update(canonicalJson(def)).digest('hex').slice(0, 16);

/** Item JSON for one due action: what a Send Email / Gmail / CRM node reads, plus the routing data. */
export function actionItem(a: DispatchedAction, route: Record<string, number>, graph?: string): CadenzaItem {
  const cadenza = { key: a.key, idempotencyKey: a.idempotencyKey, cadenceId: a.cadenceId, enrollmentId: a.enrollmentId, recordId: a.recordId, nodeId: a.nodeId, channel: a.channel, attempt: a.attempt, version: a.version, route, ...(graph ? { graph } : {}) };
  if (a.email) return { json: { ...a.email, record: a.record, cadenza } };
  if (a.activity) return { json: { ...a.activity, record: a.record, cadenza } };
  return { json: { ...a.whatsapp, record: a.record, cadenza } };
}

export class CadenzaEngine {
  readonly runtime: Runtime;
  /** Where the store is, for messages (no password). */
  readonly where: string;
  readonly ready: Promise<void>;
  /** The credential settings this engine was built with; another fingerprint means the credential was edited. */
  readonly fingerprint: string;
  readonly served = new Map<string, Served>();

  constructor(path: string, creds: CadenzaCredentials, fingerprint = settingsFingerprint(creds)) {
    this.where = describeStore(path, process.cwd());
    this.fingerprint = fingerprint;
    // C4, D6, F13 and the user directory (F6, F7), read as `cadenza serve` and the Node-RED engine node
    // read them; a bad one is refused before the store is opened.
    const options = hostOptions(creds);
    this.runtime = new Runtime({
      store: openStore(path, process.cwd()), clock: settings.clock, timezone: creds.timezone || 'UTC',
      defaultSender: creds.sender || 'cadenza@localhost', baseUrl: creds.baseUrl || 'http://localhost:5678/webhook', secret: creds.secret || undefined,
      limits: { edition: creds.edition || 'enterprise', addOns: Number(creds.addOns) || 0 },
      ...options,
      // One hand-off is a whole n8n execution (a send through SMTP or an API): a time limit of seconds
      // would retry executions still sending, i.e. send them twice.
      handOffTimeoutMs: HAND_OFF_TIMEOUT_MS, handOffLeaseMs: 2 * HAND_OFF_TIMEOUT_MS + 60_000,
      concurrency: 16,
    });
    this.runtime.onDispatch((action) => this.handOff(action));
    this.runtime.subscribe((e) => this.onEvent(e));
    this.ready = this.runtime.init().then(() => {
      if (!settings.manualTick) this.runtime.start(settings.pollMs, () => ({ cadences: this.cadences() }));
    });
  }

  cadences(): string[] {
    return [...this.served.keys()];
  }

  serve(def: CadenceDefinition, emit: Emit): void {
    this.served.set(def.id, { def, hash: graphHash(def), emit });
  }

  unserve(cadenceId: string): void {
    this.served.delete(cadenceId);
  }

  /**
   * V1/V2 under n8n's publication service, which re-registers a trigger only when the trigger's own
   * parameters change: a node that runs in a newer graph deploys it here, and the trigger serves it.
   * Deploying an unchanged definition is a no-op, so racing callers are harmless.
   */
  async refresh(def: CadenceDefinition): Promise<boolean> {
    const s = this.served.get(def.id);
    const hash = graphHash(def);
    if (s?.hash === hash) return false;
    const r = await this.runtime.deploy(def, 'n8n');
    if (s) this.served.set(def.id, { ...s, def, hash });
    return r.action !== 'unchanged';
  }

  /** `drain`: wait for every execution in flight (up to its time limit), as when an edited credential retires this engine. */
  async close(drain = false): Promise<void> {
    await this.runtime.stop(drain ? HAND_OFF_TIMEOUT_MS + 5_000 : undefined);
    await this.runtime.store.close();
  }

  /**
   * One execution per due action (D2, D5): an execution's result is the only verdict n8n gives, and it
   * is one for all its items — Send Email stops at the first refused recipient after sending to those
   * before it, so a failed batch retried whole sent them twice (and a refusal failed them all). Each
   * execution is short and none waits (no waiting execution per record); `concurrency` bounds how many
   * run at once.
   */
  private async handOff(action: DispatchedAction): Promise<void> {
    const s = await this.servedFor(action.cadenceId, [action.nodeId]);
    const route = routeTo(s.def, action.nodeId, 'action');
    // An enrollment on an older version whose step was removed from the workflow (V1): nothing here can
    // perform it, now or later. It fails at once, naming why, instead of being retried for days (R1, R4).
    if (!route) throw new CannotRunError(`step "${action.nodeId}" was removed from the workflow; restart or resume the enrollment on the current version (V1, R4)`);
    await s.emit([actionItem(action, route, s.hash)]);
  }

  /**
   * The served cadence, brought up to the store's active version when a step is missing from the graph
   * the trigger compiled (another main or a worker deployed a newer published graph).
   */
  private async servedFor(cadenceId: string, steps: string[]): Promise<Served> {
    const s = this.served.get(cadenceId);
    if (!s) throw new Error(`cadence ${cadenceId} is not served by an active workflow in this process`);
    if (steps.every((id) => routeTo(s.def, id, 'action'))) return s;
    const row = await this.runtime.store.getCadence(cadenceId);
    if (!row?.activeVersion) return s;
    const def = await this.runtime.definition(cadenceId, row.activeVersion);
    const hash = graphHash(def);
    if (hash === s.hash) return s;
    const next = { ...s, def, hash };
    this.served.set(cadenceId, next);
    return next;
  }

  /** Records that leave by an Un-enroll Check come out of its second output. */
  private onEvent(e: RuntimeEvent): void {
    if (e.type !== 'left' || !e.enrollment || !e.nodeId) return;
    const s = this.served.get(e.enrollment.cadenceId);
    const route = s && routeTo(s.def, e.nodeId, 'left');
    // Nothing is delivered here, so nothing waits on the execution's result; its failure shows in n8n.
    if (s && route) s.emit([{ json: { recordId: e.enrollment.recordId, reason: e.enrollment.reason, cadenza: { kind: 'left', cadenceId: e.enrollment.cadenceId, nodeId: e.nodeId, route } } }]).catch(() => {});
  }
}

/** Everything of a credential but its store shapes the engine: edit any of it and the engine is rebuilt. */
function settingsFingerprint(c: CadenzaCredentials): string {
  const { storePath: _store, ...settings } = c;
  return canonicalJson(settings);
}

const isPostgres = (spec: string) => /^postgres(ql)?:\/\//.test(spec);

/** Where a credential's store is: a postgres:// URL as it is, a SQLite file made absolute in the n8n user folder. */
export function storeOf(creds: CadenzaCredentials): string {
  const folder = process.env.N8N_USER_FOLDER ? join(process.env.N8N_USER_FOLDER, '.n8n') : join(homedir(), '.n8n');
  const spec = creds.storePath?.trim() || 'cadenza.db';
  return isPostgres(spec) ? spec : describeStore(spec, folder);
}

const engines = new Map<string, CadenzaEngine>();

/**
 * The engine for a credential's store, created once per process. An engine that failed to open is
 * not kept (the next call tries again: a database down at boot is not a failure until restart), and a
 * credential edited since (secret, zone, sender, public URL) gets a fresh engine that takes over the
 * cadences the old one served.
 */
/** The store a credential names, refused in queue mode unless every process can share it. */
function usableStore(creds: CadenzaCredentials): string {
  const path = storeOf(creds);
  // Queue mode runs executions on workers: each would open its own SQLite file and see other enrollments.
  if (process.env.EXECUTIONS_MODE === 'queue' && !isPostgres(path)) {
    throw new Error(`n8n runs in queue mode (EXECUTIONS_MODE=queue): every main and worker must share one store. Set the Cadenza credential's Store to a postgres:// URL instead of the SQLite file ${path}`);
  }
  return path;
}

/**
 * The credential test: its settings as the engine reads them and its store opened — on a runtime of its
 * own, never the engine serving the saved credential (a test of edited, unsaved settings must not
 * change the limits and users the running cadences send under). Returns where the store is.
 */
export async function testCredential(creds: CadenzaCredentials): Promise<string> {
  const path = usableStore(creds);
  const live = engines.get(path);
  if (live && live.fingerprint === settingsFingerprint(creds)) {
    await live.ready;
    await live.runtime.store.listCadences();
    return live.where;
  }
  const options = hostOptions(creds); // a bad setting is named before any store is opened
  const rt = new Runtime({ store: openStore(path, process.cwd()), ...options });
  try {
    await rt.init();
    await rt.store.listCadences();
  } finally {
    await rt.store.close();
  }
  return describeStore(path, process.cwd());
}

export async function engineFor(creds: CadenzaCredentials): Promise<CadenzaEngine> {
  const path = usableStore(creds);
  const fingerprint = settingsFingerprint(creds);
  let engine = engines.get(path);
  if (!engine || engine.fingerprint !== fingerprint) {
    const old = engine;
    const fresh = new CadenzaEngine(path, creds, fingerprint);
    engine = fresh;
    engines.set(path, fresh);
    fresh.ready.then(
      () => {
        if (!old) return;
        for (const [id, s] of old.served) if (!fresh.served.has(id)) fresh.served.set(id, s);
        old.served.clear();
        // Its executions in flight still report to it: the store stays open until they have (D2, D5),
        // or their sends would count as undelivered and go out again after the lease.
        void old.close(true).catch(() => {});
      },
      () => {
        if (engines.get(path) === fresh) engines.delete(path);
        void fresh.close().catch(() => {});
      },
    );
  }
  await engine.ready;
  return engine;
}

/** Stops serving a cadence in every engine of this process (a deactivated workflow). */
export function unserve(cadenceId: string): void {
  for (const e of engines.values()) e.unserve(cadenceId);
}

/** The engine of this process that serves a cadence, if any (graph nodes have no credential of their own). */
export function engineServing(cadenceId: string): CadenzaEngine | undefined {
  for (const e of engines.values()) if (e.served.has(cadenceId)) return e;
  return undefined;
}

/** Closes every engine of this process (tests, and a host shutting down). */
export async function closeEngines(): Promise<void> {
  const all = [...engines.values()];
  engines.clear();
  for (const e of all) await e.close().catch(() => {});
}

/**
 * Graph nodes pass on what is not theirs: an item carries, for every cadence node on its way, the output
 * to leave by. Items without a route for this node did not come from a Cadence Trigger and are dropped.
 */
export function routeItems(nodeId: string, items: CadenzaItem[], outputs: number): CadenzaItem[][] {
  const out: CadenzaItem[][] = Array.from({ length: outputs }, () => []);
  for (const item of items) {
    const c = item.json.cadenza as { route?: Record<string, number>; nodeId?: string; kind?: string } | undefined;
    const index = c?.route?.[nodeId];
    if (index === undefined || index < 0 || index >= outputs) continue;
    // The step that owns the action hands performers a clean item: no routing data.
    if (c?.nodeId === nodeId && c.kind !== 'left') {
      const rest = { ...(c as Record<string, unknown>) };
      delete rest.route;
      delete rest.graph;
      out[index].push({ json: { ...item.json, cadenza: rest } });
    } else out[index].push(item);
  }
  return out;
}
