// The n8n host glue: one engine runtime per store per process, shared by every Cadenza node in it.
// Active Cadence Triggers register the cadences they serve; the scheduler claims work for those only
// (another process or an inactive workflow never receives them), and hands each claimed batch to the
// trigger as one execution: many due items per execution, never one waiting execution per record.
import { join } from 'node:path';
import { homedir } from 'node:os';
import { routeTo } from '../../../engine/model/formats/n8n';
import type { CadenceDefinition } from '../../../engine/model/types';
import type { Clock } from '../../../engine/runtime/clock';
import { Runtime, type DispatchedAction, type RuntimeEvent } from '../../../engine/runtime/runtime';
import { describeStore, openStore } from '../../../engine/store/open';
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
}

export interface CadenzaItem {
  json: Record<string, unknown>;
}

interface Served {
  def: CadenceDefinition;
  emit: (items: CadenzaItem[]) => void;
}

/** Embedding and test hooks: a clock and "don't run the loop, I tick myself". */
const settings: { clock?: Clock; manualTick?: boolean; pollMs: number } = { pollMs: 1000 };
export function configureCadenza(s: { clock?: Clock; manualTick?: boolean; pollMs?: number }): void {
  Object.assign(settings, s);
}

/** Item JSON for one due action: what a Send Email / Gmail / CRM node reads, plus the routing data. */
export function actionItem(a: DispatchedAction, route: Record<string, number>): CadenzaItem {
  const cadenza = { key: a.key, idempotencyKey: a.idempotencyKey, cadenceId: a.cadenceId, enrollmentId: a.enrollmentId, recordId: a.recordId, nodeId: a.nodeId, channel: a.channel, attempt: a.attempt, version: a.version, route };
  if (a.email) return { json: { ...a.email, record: a.record, cadenza } };
  if (a.activity) return { json: { ...a.activity, record: a.record, cadenza } };
  return { json: { ...a.whatsapp, record: a.record, cadenza } };
}

export class CadenzaEngine {
  readonly runtime: Runtime;
  /** Where the store is, for messages (no password). */
  readonly where: string;
  readonly ready: Promise<void>;
  private readonly served = new Map<string, Served>();

  constructor(path: string, creds: CadenzaCredentials) {
    this.where = describeStore(path, process.cwd());
    this.runtime = new Runtime({
      store: openStore(path, process.cwd()), clock: settings.clock, timezone: creds.timezone || 'UTC',
      defaultSender: creds.sender || 'cadenza@localhost', baseUrl: creds.baseUrl || 'http://localhost:5678/webhook', secret: creds.secret || undefined,
      limits: { edition: creds.edition || 'enterprise', addOns: Number(creds.addOns) || 0 },
      whatsappTemplates: creds.whatsappTemplates?.trim() ? creds.whatsappTemplates.split(',').map((t) => t.trim()).filter(Boolean) : undefined,
      retry: Number(creds.retryHours) > 0 ? { holdMs: Number(creds.retryHours) * 3_600_000 } : undefined,
    });
    this.runtime.onDispatchBatch((actions) => this.deliver(actions));
    this.runtime.subscribe((e) => this.onEvent(e));
    this.ready = this.runtime.init().then(() => {
      if (!settings.manualTick) this.runtime.start(settings.pollMs, () => ({ cadences: this.cadences() }));
    });
  }

  cadences(): string[] {
    return [...this.served.keys()];
  }

  serve(def: CadenceDefinition, emit: Served['emit']): void {
    this.served.set(def.id, { def, emit });
  }

  unserve(cadenceId: string): void {
    this.served.delete(cadenceId);
  }

  /** One emit per cadence per batch: the trigger starts one execution carrying all its due items. */
  private deliver(actions: DispatchedAction[]): void {
    const byCadence = new Map<string, CadenzaItem[]>();
    for (const a of actions) {
      const s = this.served.get(a.cadenceId);
      if (!s) throw new Error(`cadence ${a.cadenceId} is not served by an active workflow in this process`);
      const route = routeTo(s.def, a.nodeId, 'action');
      // The enrollment runs on an older version whose step is gone from the graph: retried until it is resolved.
      if (!route) throw new Error(`step ${a.nodeId} is no longer in the workflow`);
      byCadence.set(a.cadenceId, [...(byCadence.get(a.cadenceId) ?? []), actionItem(a, route)]);
    }
    for (const [id, items] of byCadence) this.served.get(id)!.emit(items);
  }

  /** Records that leave by an Un-enroll Check come out of its second output. */
  private onEvent(e: RuntimeEvent): void {
    if (e.type !== 'left' || !e.enrollment || !e.nodeId) return;
    const s = this.served.get(e.enrollment.cadenceId);
    const route = s && routeTo(s.def, e.nodeId, 'left');
    if (s && route) s.emit([{ json: { recordId: e.enrollment.recordId, reason: e.enrollment.reason, cadenza: { kind: 'left', cadenceId: e.enrollment.cadenceId, nodeId: e.nodeId, route } } }]);
  }
}

const engines = new Map<string, CadenzaEngine>();

/** The engine for a credential's store, created once per process. */
export async function engineFor(creds: CadenzaCredentials): Promise<CadenzaEngine> {
  const folder = process.env.N8N_USER_FOLDER ? join(process.env.N8N_USER_FOLDER, '.n8n') : join(homedir(), '.n8n');
  const spec = creds.storePath?.trim() || 'cadenza.db';
  // A postgres:// URL is shared as it is; a file is made absolute so every node of the process finds one engine.
  const path = /^postgres(ql)?:\/\//.test(spec) ? spec : describeStore(spec, folder);
  let engine = engines.get(path);
  if (!engine) {
    engine = new CadenzaEngine(path, creds);
    engines.set(path, engine);
  }
  await engine.ready;
  return engine;
}

/** Closes every engine of this process (tests, and a host shutting down). */
export async function closeEngines(): Promise<void> {
  for (const e of engines.values()) {
    await e.runtime.stop();
    await e.runtime.store.close();
  }
  engines.clear();
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
      out[index].push({ json: { ...item.json, cadenza: rest } });
    } else out[index].push(item);
  }
  return out;
}
