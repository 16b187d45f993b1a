// Admin routes the editor calls (under Node-RED's admin auth): the flow being edited checked by the
// engine's own compilation and validation before deploy, the enrollments a deploy would stop (V2), and
// resuming them afterwards (R1). No rule lives in the editor's HTML: it asks here.
import { CadenzaError, validateDefinition, type FollowUpNode } from '../../engine';
import { checkNodeRedFlow, compileTrigger, explain, followUpNode, HOST_DEFAULTS, hostOptions, nodeRedEngineSettings, mergeFields, NODE_RED_TYPES, previewFollowUp, SAMPLE_RECORD, wouldStop, type FlowNode } from '../../engine/host';
import { hostFor } from './host';
import type { AdminResponse, Handler, Red } from './red';

export interface StopWarning {
  cadenceId: string;
  nodeId: string;
  records: string[];
  /** The trigger is disabled (itself or its tab): the whole cadence halts (V3), nothing to resume onto. */
  halts?: boolean;
  /** A step this deploy deletes, which these enrollments (on their older version, V1) would reach and fail at: its name. */
  deleted?: string;
}

// Once per admin app: a test harness or an embedder may start Node-RED's server more than once per process.
const mounted = new WeakSet<object>();

export function mountAdminRoutes(RED: Red): void {
  if (!RED.httpAdmin || mounted.has(RED.httpAdmin)) return;
  mounted.add(RED.httpAdmin);
  const read: Handler = RED.auth ? RED.auth.needsPermission('cadenza-config.read') : (_q, _s, next) => next();
  const write: Handler = RED.auth ? RED.auth.needsPermission('cadenza-config.write') : (_q, _s, next) => next();
  const fail = (res: AdminResponse, err: unknown) =>
    res.status(err instanceof CadenzaError ? 400 : 500).json({ error: err instanceof Error ? err.message : String(err), rule: (err as CadenzaError).rule });

  // Body: { flows: [...] } as the editor holds them. Answer: problems by node id, and stop warnings.
  RED.httpAdmin.post('/cadenza/check', read, (req, res) => {
    const flows = (req.body as { flows?: unknown })?.flows;
    if (!Array.isArray(flows)) return res.status(400).json({ error: 'D4 flows: must be the list of nodes the editor holds', rule: 'D4' });
    checkFlows(RED, flows as FlowNode[]).then((r) => res.json(r), (err) => fail(res, err));
  });

  // Body: { params: <a Follow-up Step's fields>, trigger?: <the trigger it hangs from> }. Answer: the step
  // rendered by the engine against the newest record of the cadence's module (or a sample), and the
  // merge fields the module's records offer.
  RED.httpAdmin.post('/cadenza/preview', read, (req, res) => {
    const { params, trigger } = (req.body ?? {}) as { params?: unknown; trigger?: unknown };
    if (!params || typeof params !== 'object') return res.status(400).json({ error: 'D4 params: must be the fields of a Follow-up Step', rule: 'D4' });
    (async () => {
      const t = typeof trigger === 'string' ? (RED.nodes.getNode(trigger) as { engine?: string; module?: string } | null) : null;
      const host = hostFor(RED, t?.engine);
      const module = typeof (params as { module?: unknown }).module === 'string' ? String((params as { module: string }).module) : t?.module ?? 'Leads';
      const records = host ? await host.store.listRecords(module, null, 20) : [];
      const record = records[records.length - 1] ?? { ...SAMPLE_RECORD, module };
      const node = followUpNode('preview', params as Record<string, unknown>) as FollowUpNode;
      const preview = previewFollowUp(node, record, { defaultSender: host?.defaultSender ?? HOST_DEFAULTS.sender, templates: {} }, host?.runtime.clock.now() ?? Date.now());
      res.json({ preview, fields: mergeFields(records.length ? records : [record]), sample: !records.length });
    })().catch((err) => fail(res, err));
  });

  // Body: { engine: <config node id>, name }: a key for the report page, with the view scope only.
  // Shown once to the editor user (only its hash is stored); admin write permission needed.
  RED.httpAdmin.post('/cadenza/keys', write, (req, res) => {
    const { engine, name } = (req.body ?? {}) as { engine?: unknown; name?: unknown };
    const host = hostFor(RED, engine);
    if (!host) return res.status(404).json({ error: `D4 engine: no deployed Cadenza engine "${String(engine)}" (deploy it first)`, rule: 'D4' });
    host.ready
      .then(() => host.runtime.createApiKey(typeof name === 'string' && name.trim() ? name.trim() : 'report (Node-RED editor)', ['view'], 'node-red-editor'))
      .then((k) => res.json({ key: k.key, scopes: k.scopes, url: 'cadenza/' }), (err) => fail(res, err));
  });

  // Body: { cadenceId, records: [...] }: resume each where it stopped, on the version now active (R1).
  RED.httpAdmin.post('/cadenza/resume', write, (req, res) => {
    const { cadenceId, records } = (req.body ?? {}) as { cadenceId?: unknown; records?: unknown };
    if (typeof cadenceId !== 'string') return res.status(400).json({ error: 'D4 cadenceId: must be the id of a Cadence Trigger', rule: 'D4' });
    if (!Array.isArray(records) || !records.every((r) => typeof r === 'string')) return res.status(400).json({ error: 'D4 records: must be a list of record ids', rule: 'D4' });
    (async () => {
      // The editor asks as soon as its deploy returns, which can be before the new nodes have started
      // and before the publish that stops these enrollments has run: wait for both, or the resume would
      // miss the trigger, or come first and be undone by the publish.
      const host = await deployedHost(RED, cadenceId);
      if (!host) return res.status(404).json({ error: `D4 cadenceId: no deployed Cadence Trigger "${cadenceId}"`, rule: 'D4' });
      await Promise.race([host.synced, new Promise((r) => setTimeout(r, START_WAIT_MS))]);
      await host.settled();
      const answers = [];
      for (const r of records as string[]) answers.push(await host.runtime.reenroll(cadenceId as string, r, 'resume', 'node-red-editor'));
      res.json({ answers });
    })().catch((err) => fail(res, err));
  });
}

const START_WAIT_MS = 15_000;

/** The host of a trigger, waiting (real time, bounded) for a deploy in progress to start its nodes. */
async function deployedHost(RED: Red, triggerId: string) {
  const find = () => hostFor(RED, (RED.nodes.getNode(triggerId) as { engine?: string } | null)?.engine);
  const until = Date.now() + START_WAIT_MS;
  while (!find() && Date.now() < until) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        RED.events.removeListener('flows:started', done);
        resolve();
      };
      const timer = setTimeout(done, 250);
      RED.events.on('flows:started', done);
    });
  }
  return find();
}

async function checkFlows(RED: Red, flows: FlowNode[]): Promise<{ problems: Record<string, string[]>; stopping: StopWarning[] }> {
  const problems: Record<string, string[]> = {};
  for (const p of checkNodeRedFlow(flows)) (problems[p.node!] ??= []).push(explain(p));
  // The engine nodes' own settings, read as the engine will read them on deploy (a bad one stops it).
  for (const cfg of flows.filter((n) => n.type === 'cadenza-config')) {
    try {
      hostOptions(nodeRedEngineSettings(cfg));
    } catch (e) {
      if (!(e instanceof CadenzaError)) throw e;
      problems[cfg.id] = e.problems.map(explain);
    }
  }
  const stopping: StopWarning[] = [];
  // V3: a trigger disabled (or on a disabled tab) deactivates its cadence: every active enrollment halts
  // now and stays stopped when it comes back. Said before deploy, with how many.
  const offTabs = new Set(flows.filter((n) => n.type === 'tab' && n.disabled === true).map((n) => n.id));
  for (const t of flows) {
    if (t.type !== NODE_RED_TYPES.trigger || !(t.d || (t.z && offTabs.has(t.z)))) continue;
    const host = hostFor(RED, t.engine);
    if (!host) continue;
    await host.ready;
    const row = await host.store.getCadence(t.id);
    if (row?.status !== 'active') continue;
    const records = (await host.store.listEnrollments({ cadenceId: t.id, status: 'active', limit: 10_000 })).map((e) => e.enrollment.recordId);
    if (records.length) stopping.push({ cadenceId: t.id, nodeId: t.id, records, halts: true });
  }
  for (const t of flows) {
    if (t.type !== NODE_RED_TYPES.trigger || t.d || (t.z && offTabs.has(t.z))) continue;
    const host = hostFor(RED, t.engine);
    let def: ReturnType<typeof compileTrigger>;
    try {
      def = compileTrigger(flows, t.id);
    } catch (e) {
      if (e instanceof CadenzaError) continue; // a graph that does not compile: checkNodeRedFlow named it above
      throw e;
    }
    if (!host || validateDefinition(def).length) continue;
    await host.ready;
    const row = await host.store.getCadence(def.id);
    if (!row?.activeVersion || row.status !== 'active') continue;
    const stops = await wouldStop(host.store, def, (v) => host.runtime.definition(def.id, v), host.runtime.clock.now());
    const byNode = new Map<string, { records: string[]; deleted?: string }>();
    for (const s of stops) {
      const g = byNode.get(s.nodeId) ?? { records: [], ...(s.deleted ? { deleted: s.deleted } : {}) };
      g.records.push(s.recordId);
      byNode.set(s.nodeId, g);
    }
    for (const [nodeId, g] of byNode) stopping.push({ cadenceId: def.id, nodeId, ...g });
  }
  return { problems, stopping };
}
