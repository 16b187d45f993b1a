// The Node-RED host glue: one engine runtime per config node. Deploy is publish: after every deploy
// the graph reachable from each Cadence Trigger is compiled and handed to Runtime.deploy. Due actions
// leave through the Follow-up Step that owns them. Nothing lives in node context or in per-record
// timers, so a redeploy or a restart loses nothing (D1).
import { CadenzaError, CannotRunError, Runtime, type Clock, type DispatchedAction, type Problem, type Store } from '../../engine';
import { cadenzaHttp, compileTrigger, explain, HOST_DEFAULTS, hostOptions, NODE_RED_TYPES, nodeRedEngineSettings, openStore, stepStates, trackingToken, type Edition, type RuntimeEvent } from '../../engine/host';
import { DateTime } from 'luxon';
import type { CompleteEvent, Node, NodeMessage, Red } from './red';

/** Test and embedding hooks, from Node-RED's settings file: `cadenza: { clock, manualTick }`. */
interface CadenzaSettings {
  clock?: Clock;
  /** Don't run the scheduler loop: the embedder calls `host.runtime.tick()` itself. */
  manualTick?: boolean;
}

/** What the host calls on the nodes it drives. */
export interface TriggerInstance extends Node {
  showDeployed(text: string): void;
  showProblem(err: Error): void;
}
export interface FollowUpInstance extends Node {
  deliver(action: DispatchedAction): void;
}
export interface CheckInstance extends Node {
  leave(msg: NodeMessage): void;
}

const hosts = new Set<NodeRedHost>();
let hostCount = 0;
let routesMounted = false;

/** How long a confirmed step's performer (Complete / Catch) may take before the hand-off counts as failed (as in n8n). */
const HAND_OFF_TIMEOUT_MS = 5 * 60_000;
/** How long a deploy or a shutdown waits for sends in flight: below Node-RED's 15 s close time-out (nodeCloseTimeout). */
const CLOSE_GRACE_MS = 12_000;
/**
 * Performer types whose done() means the send succeeded: node-red-node-email reports a failure only with
 * node.error(err, msg) (to Catch) and calls done() once the relay accepted the message. (The core http
 * request calls done() after a failure too, so its done() proves nothing.)
 */
const DONE_MEANS_SENT = new Set(['e-mail']);

export class NodeRedHost {
  readonly runtime: Runtime;
  readonly ready: Promise<void>;
  readonly store: Store;
  private readonly timezone: string;
  readonly defaultSender: string;
  private statusTimer: NodeJS.Timeout | null = null;
  readonly http: ReturnType<typeof cadenzaHttp>;
  private readonly dirty = new Set<string>();
  private syncing: Promise<void> = Promise.resolve();

  constructor(private readonly RED: Red, readonly node: Node, cfg: Record<string, unknown>) {
    const injected = (RED.settings.cadenza ?? {}) as CadenzaSettings;
    const str = (k: string) => (typeof cfg[k] === 'string' && (cfg[k] as string).trim() ? (cfg[k] as string).trim() : undefined);
    // C4, D6, F13 and the user directory (F6, F7), read as `cadenza serve` and the n8n credential read
    // them; a bad one is refused before the store is opened.
    const options = hostOptions(nodeRedEngineSettings(cfg));
    // A SQLite file in the user directory by default, or a postgres:// URL shared by several instances.
    this.store = openStore(typeof cfg.storePath === 'string' ? cfg.storePath : undefined, RED.settings.userDir ?? process.cwd());
    const port = RED.settings.uiPort ?? 1880;
    this.timezone = str('timezone') ?? HOST_DEFAULTS.timezone;
    this.defaultSender = str('sender') ?? HOST_DEFAULTS.sender;
    this.runtime = new Runtime({
      store: this.store,
      clock: injected.clock,
      timezone: this.timezone,
      defaultSender: this.defaultSender,
      baseUrl: str('baseUrl') ?? `http://localhost:${port}${(RED.settings.httpNodeRoot ?? '/').replace(/\/$/, '')}/cadenza`,
      secret: node.credentials?.secret || undefined,
      limits: { edition: (str('edition') as Edition | undefined) ?? 'enterprise', addOns: Number(cfg.addOns) || 0 },
      ...options,
      // A mail node may wait on a slow relay for minutes. A hand-off given up sooner is handed over again
      // while the first may still be sending: the lead would get two. (Only hand-offs are leased this
      // long; a claim of due work keeps the default minute.)
      handOffTimeoutMs: HAND_OFF_TIMEOUT_MS, handOffLeaseMs: 2 * HAND_OFF_TIMEOUT_MS + 60_000, stopGraceMs: CLOSE_GRACE_MS,
    });
    // One label per host instance: a full deploy starts the new host before the old one closes, and
    // the old one's removal must not take the new one's hook.
    this.hookName = `onComplete.cadenza-${node.id}-${++hostCount}`;
    RED.hooks?.add(this.hookName, this.onComplete);
    this.http = cadenzaHttp(this.runtime);
    this.runtime.onDispatch((a) => this.dispatch(a));
    this.runtime.subscribe((e) => this.onEvent(e));
    this.ready = this.runtime.init().then(() => {
      if (!injected.manualTick) this.runtime.start(Number(cfg.pollMs) || 1000);
    });
    RED.events.on('flows:started', this.onFlows);
    hosts.add(this);
    if (!routesMounted && RED.httpNode) {
      routesMounted = true;
      // The HTTP module (API, tracking, report page) under /cadenza on Node-RED's own server. Tracking
      // links are signed per engine: the engine whose secret verifies the token answers; the API and
      // the report page are the first engine's.
      RED.httpNode.use('/cadenza', (req, res, next) => {
        // Express strips the mount path; the report page knows itself as /cadenza/, so hand it that path
        // back, or its sign-in redirect (?key= into a cookie) would send the browser to the editor at /.
        const r = req as { url?: string };
        if (/^\/?(\?|$)/.test(r.url ?? '')) r.url = `/cadenza/${(r.url ?? '').replace(/^\//, '')}`;
        const live = [...hosts];
        const token = trackingToken(new URL(String((req as { url?: string }).url ?? '/'), 'http://local').pathname);
        const owner = (token && live.find((h) => h.runtime.verifyLink(token))) || live[0];
        if (!owner) return next();
        void owner.http(req as never, res as never, next);
      });
    }
  }

  /** After every deploy (full, flows or nodes), make each cadence of this engine match its wires. */
  private readonly onFlows = (e: unknown) => {
    const flows = ((e as { config?: { flows?: unknown[] } })?.config?.flows ?? []) as Record<string, unknown>[];
    this.syncing = this.syncing.then(() => this.ready).then(() => this.sync(flows)).catch((err) => this.node.error(err));
    void this.syncing.then(this.markSynced);
  };

  private markSynced: () => void = () => undefined;
  /** Resolves once the deploy that started this host (a full deploy makes a new one) has been published. */
  readonly synced: Promise<void> = new Promise((resolve) => (this.markSynced = resolve));

  private readonly inflight = new Set<Promise<unknown>>();

  /** Work a node does for a message (enroll, record an outcome): close() waits for it, so a redeploy never closes the store under it. */
  track(work: Promise<unknown>): void {
    this.inflight.add(work);
    void work.finally(() => this.inflight.delete(work)).catch(() => undefined);
  }

  /** Resolves when the last deploy has been published and every message in hand is done (tests and embedders wait on it). */
  async settled(): Promise<void> {
    await this.syncing;
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  private async sync(flows: Record<string, unknown>[]): Promise<void> {
    // V3: a cadence whose trigger was deleted or disabled (node or tab) is deactivated. Read from the
    // deployed flows, not from node close events, so it holds across full deploys and restarts.
    const disabledTabs = new Set(flows.filter((n) => n.type === 'tab' && n.disabled === true).map((n) => n.id));
    const live = new Set(flows.filter((n) => n.type === NODE_RED_TYPES.trigger && !n.d && !(n.z && disabledTabs.has(n.z))).map((n) => n.id));
    const enabled = flows.filter((n) => !n.d && !(n.z && disabledTabs.has(n.z)));
    ({ steps: this.confirmed, performers: this.performers } = deliveryWatch(enabled, this.node.id as string));
    this.deployed = new Set(enabled.map((n) => n.id as string));
    for (const row of await this.store.listCadences()) {
      if (row.status === 'active' && !live.has(row.id) && (await this.createdByNodeRed(row.id))) await this.runtime.deactivate(row.id, 'node-red');
    }
    for (const t of flows) {
      if (t.type !== NODE_RED_TYPES.trigger || t.engine !== this.node.id) continue;
      const trigger = this.RED.nodes.getNode(t.id as string) as TriggerInstance | null;
      if (!trigger || !live.has(t.id as string)) continue;
      try {
        const def = compileTrigger(flows as never, t.id as string);
        const r = await this.runtime.deploy(def, 'node-red');
        this.refused.delete(def.id);
        const active = await this.runtime.countActive(def.id);
        // Published with a warning (a view every record matches, records it cannot decide): said where the user looks.
        for (const w of r.warnings ?? []) trigger.warn(`Cadenza: ${w}`);
        trigger.showDeployed(`v${r.version} · ${active} active${r.action === 'published' && r.stopped ? ` · ${r.stopped} stopped (V2)` : ''}${r.warnings?.length ? ' · see warnings' : ''}`);
        await this.showSteps(def.id, def.nodes.map((n) => n.id));
      } catch (err) {
        // The refusal stays on the trigger: the live count must not paint it green while the old version runs on.
        this.refused.add(t.id as string);
        trigger.showProblem(err as Error);
        // Point at each node a problem names, so the user sees where to fix it.
        for (const p of (err as CadenzaError).problems ?? []) {
          const n = p.node ? this.RED.nodes.getNode(p.node) : null;
          if (n && n.id !== trigger.id) {
            n.status({ fill: 'red', shape: 'ring', text: `${p.rule} ${p.field}` });
            n.error(explain(p));
          }
        }
      }
    }
  }

  /**
   * Only cadences a Node-RED deploy created are Node-RED's to deactivate: one made through REST, the
   * CLI or n8n on a shared store is not a "deleted trigger". The first audit row of a cadence is its
   * creation, with the actor that created it.
   */
  private async createdByNodeRed(cadenceId: string): Promise<boolean> {
    const [first] = await this.store.listAudit({ cadenceId, limit: 1 });
    return first?.event === 'created' && first.actor === 'node-red';
  }

  /**
   * D5: the step sends the action on; when the flow confirms deliveries (a Record Outcome node of this
   * engine in "delivered" mode, fed by the performer's Complete node, and one in "failed" mode fed by a
   * Catch node) the hand-off lasts until that verdict; otherwise it is delivered when handed on.
   */
  private dispatch(a: DispatchedAction): Promise<void> | void {
    const node = this.RED.nodes.getNode(a.nodeId) as FollowUpInstance | null;
    if (!node || typeof node.deliver !== 'function') {
      // Gone from the deployed flows (deleted or disabled since the enrollment's version, V1): nothing can
      // perform it, now or later, so the enrollment fails at once naming it (resume or restart it, R1, R4).
      if (this.deployed && !this.deployed.has(a.nodeId)) throw new CannotRunError(`Follow-up Step "${a.nodeId}" is no longer in the deployed flows; resume or restart the enrollment on the current version (V1, R4)`);
      // Mid-deploy: the outbox keeps it and retries with backoff.
      throw new Error(`Follow-up Step ${a.nodeId} is not deployed`);
    }
    const confirmed = this.confirmed.has(a.nodeId) ? this.runtime.awaitConfirmation(a.key, a.attempt) : undefined;
    node.deliver(a);
    return confirmed;
  }

  /** The steps whose performer the deployed flows confirm (read at every deploy), and those performers. */
  private confirmed = new Set<string>();
  private performers = new Set<string>();
  /** The enabled nodes of the last deploy (undefined until the first): a step not among them was removed. */
  private deployed: Set<string> | undefined;
  private closing = false;
  private readonly hookName: string;
  /** Cadences whose last deploy was refused: their trigger keeps showing why. */
  private readonly refused = new Set<string>();

  /**
   * D2, D5: a deploy or a shutdown closes the Complete and Record Outcome nodes at once, while a mail node
   * may still be talking to its relay: the verdict they would carry is lost, and the send would go out a
   * second time after the lease. So while closing, the host reads it itself: a watched performer that
   * says done() for an action (a mail node: the relay took it) or done(err) is taken as its verdict.
   */
  private readonly onComplete = (ev: CompleteEvent): void => {
    const c = ev.msg?.cadenza as { key?: unknown; attempt?: unknown } | undefined;
    if (!this.closing || typeof c?.key !== 'string' || !this.performers.has(ev.node?.id)) return;
    if (!ev.error && !DONE_MEANS_SENT.has(ev.node.node?.type ?? '')) return;
    const error = ev.error ? { message: ev.error instanceof Error ? ev.error.message : String(ev.error) } : undefined;
    void this.runtime.confirmDelivery(c.key, error, typeof c.attempt === 'number' ? c.attempt : undefined).catch(() => undefined);
  };

  private onEvent(e: RuntimeEvent): void {
    // The engine's own trouble (a write that failed, a timer that threw) belongs in Node-RED's log.
    if (e.type === 'error') this.node.warn(`Cadenza: ${e.error}`);
    if (e.type === 'left' && e.nodeId && e.enrollment) {
      const check = this.RED.nodes.getNode(e.nodeId) as CheckInstance | null;
      check?.leave?.({ payload: { recordId: e.enrollment.recordId, cadenceId: e.enrollment.cadenceId, reason: e.enrollment.reason }, cadenza: e.enrollment });
    }
    if (e.type === 'dispatchFailed' && e.nodeId) {
      this.RED.nodes.getNode(e.nodeId)?.status({ fill: 'red', shape: 'ring', text: e.error ?? 'failed' });
    }
    if (e.type === 'changed' && e.enrollment) {
      this.dirty.add(e.enrollment.cadenceId);
      // One timer per engine for status dots, never one per record.
      this.statusTimer ??= setTimeout(() => void this.refreshStatus(), 500);
    }
  }

  private async refreshStatus(): Promise<void> {
    this.statusTimer = null;
    const ids = [...this.dirty];
    this.dirty.clear();
    for (const id of ids) {
      const trigger = this.RED.nodes.getNode(id) as TriggerInstance | null;
      const row = await this.store.getCadence(id).catch(() => undefined);
      if (trigger && row && !this.refused.has(id)) trigger.showDeployed(`v${row.activeVersion} · ${await this.runtime.countActive(id)} active`);
      if (row?.activeVersion) await this.showSteps(id, (await this.runtime.definition(id, row.activeVersion)).nodes.map((n) => n.id)).catch(() => undefined);
    }
  }

  /**
   * (Strings from the config node's catalog: this host runs in the config node's module.)
   * Each step's status from the store, so it holds across deploys and restarts: "2 waiting · next
   * 4 Mar 10:00 · 5 sent". Branches and checks show who waits at them; nodes with nothing show nothing.
   */
  private async showSteps(cadenceId: string, nodeIds: readonly string[]): Promise<void> {
    const states = await stepStates(this.store, cadenceId);
    for (const id of nodeIds) {
      const node = this.RED.nodes.getNode(id) as Node | null;
      if (!node) continue;
      const s = states[id];
      const parts: string[] = [];
      if (s?.waiting) parts.push(this.RED._('cadenza-config.status.waiting', { count: s.waiting }));
      if (s?.nextDue != null) parts.push(this.RED._('cadenza-config.status.next', { at: DateTime.fromMillis(s.nextDue, { zone: this.timezone }).toFormat('d LLL HH:mm') }));
      if (s?.executed) parts.push(this.RED._('cadenza-config.status.sent', { count: s.executed }));
      node.status(parts.length ? { fill: s!.waiting ? 'blue' : 'grey', shape: s!.waiting ? 'dot' : 'ring', text: parts.join(' · ') } : {});
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.RED.events.removeListener('flows:started', this.onFlows);
    if (this.statusTimer) clearTimeout(this.statusTimer);
    hosts.delete(this);
    await this.settled().catch(() => undefined);
    await this.runtime.stop(); // waits up to CLOSE_GRACE_MS for hand-offs in flight, their verdicts read by onComplete
    this.RED.hooks?.remove(this.hookName);
    await this.store.close();
  }
}

/**
 * D5: the Follow-up Steps whose action reaches a performer watched by a `complete` node that leads to a
 * Record Outcome of this engine in "delivered" mode. Only those wait for a verdict; a step whose
 * performer nobody confirms (a debug node, a task list) is delivered when it sends the action on. With
 * them, the performers (a step's direct targets) those `complete` nodes watch.
 */
export function deliveryWatch(flows: readonly Record<string, unknown>[], engineId: string): { steps: Set<string>; performers: Set<string> } {
  const byId = new Map(flows.map((n) => [n.id as string, n]));
  const wires = (n: Record<string, unknown>) => ((n.wires as string[][] | undefined) ?? []).flat();
  const reachesDelivered = (start: Record<string, unknown>) => {
    const seen = new Set<string>();
    const queue = wires(start);
    while (queue.length) {
      const id = queue.shift()!;
      if (seen.has(id)) continue;
      seen.add(id);
      const n = byId.get(id);
      if (!n) continue;
      if (n.type === 'cadenza-outcome' && n.mode === 'delivered' && n.engine === engineId) return true;
      queue.push(...wires(n));
    }
    return false;
  };
  const watchers = flows.filter((n) => n.type === 'complete' && reachesDelivered(n));
  const watched = (target: string) => watchers.some((c) => (Array.isArray(c.scope) ? (c.scope as string[]).includes(target) : c.z === byId.get(target)?.z));
  const steps = new Set<string>();
  const performers = new Set<string>();
  for (const n of flows) {
    if (n.type !== NODE_RED_TYPES.followUp) continue;
    const targets = (((n.wires as string[][] | undefined) ?? [])[0] ?? []).filter(watched);
    if (targets.length) steps.add(n.id as string);
    for (const t of targets) performers.add(t);
  }
  return { steps, performers };
}

/** The engine a node uses: its own config node, or the one its cadence's trigger names. */
export function hostFor(RED: Red, engineId: unknown): NodeRedHost | undefined {
  const cfg = typeof engineId === 'string' ? RED.nodes.getNode(engineId) : null;
  return (cfg as { host?: NodeRedHost } | null)?.host;
}

/** Why an engine node chosen by a node did not start (a bad setting, Node.js without node:sqlite), if it did not. */
export function engineDown(RED: Red, engineId: unknown): string | undefined {
  const cfg = typeof engineId === 'string' ? RED.nodes.getNode(engineId) : null;
  return (cfg as { startError?: string } | null)?.startError;
}

/** Turns a refused input into the message a node shows: the rule and what is wrong. */
export function describeError(err: unknown): string {
  if (err instanceof CadenzaError) return err.problems.length ? err.problems.map(explain).join('\n') : `${err.rule}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** Shows a node's own configuration problems: a red status naming the first rule, and each as an error. */
export function showProblems(node: Node, problems: readonly Problem[]): boolean {
  if (!problems.length) return false;
  node.status({ fill: 'red', shape: 'ring', text: `${problems[0].rule} ${problems[0].field}` });
  for (const p of problems) node.error(explain(p));
  return true;
}

/** Graph nodes are driven by the engine, never by messages: say so instead of dropping them silently. */
export function refuseInput(node: Node, warning: string): void {
  node.on('input', (_msg, _send, done) => {
    node.warn(warning);
    done();
  });
}
