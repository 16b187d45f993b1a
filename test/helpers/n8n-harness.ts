// Runs the package's n8n nodes the way n8n does: loaded from the built package by n8n-core's
// PackageDirectoryLoader, triggers through its TriggerContext, executions through WorkflowExecute.
// The two things n8n's server would bring and cannot be installed here are supplied minimally: a
// credentials helper that returns the test credential, and a "Collect" node standing in for Send Email.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { INode, INodeExecutionData, INodeType, IRun, ITriggerResponse, IWebhookResponseData, IWorkflowExecuteAdditionalData, WorkflowActivateMode } from 'n8n-workflow';
import { VirtualClock } from '../../engine/runtime/clock';
import { hostStoreSpec } from './harness';

/* eslint-disable @typescript-eslint/no-require-imports */
const root = join(__dirname, '../..');
if (!process.env.N8N_USER_FOLDER) {
  // n8n-core writes its instance settings there on load; gone when the test process ends.
  const folder = mkdtempSync(join(tmpdir(), 'cadenza-n8n-user-'));
  process.env.N8N_USER_FOLDER = folder;
  process.on('exit', () => rmSync(folder, { recursive: true, force: true }));
}
const core = require('n8n-core') as typeof import('n8n-core');
const wf = require('n8n-workflow') as typeof import('n8n-workflow');
const host = require('../../dist/nodes/n8n/shared/host.js') as typeof import('../../nodes/n8n/shared/host');

export const PKG = '@cadenza-oss/n8n-nodes-cadenza';
export const T = {
  trigger: `${PKG}.cadenceTrigger`, step: `${PKG}.followUpStep`, branch: `${PKG}.outcomeBranch`, check: `${PKG}.unenrollCheck`,
  enroll: `${PKG}.cadenzaEnroll`, outcome: `${PKG}.cadenzaRecordOutcome`, tracking: `${PKG}.cadenzaTracking`, collect: 'test.collect', flaky: 'test.flaky',
};

/** A performer node: records what reaches it, as Send Email would send it. */
class Collect implements INodeType {
  static seen: Record<string, INodeExecutionData[]> = {};
  /** Everything any Collect node received, in arrival order. */
  static log: INodeExecutionData[] = [];
  description = {
    displayName: 'Collect', name: 'collect', group: ['output'], version: 1, description: '', defaults: { name: 'Collect' },
    inputs: ['main'], outputs: ['main'], properties: [],
  } as unknown as INodeType['description'];
  async execute(this: import('n8n-workflow').IExecuteFunctions) {
    const name = this.getNode().name;
    (Collect.seen[name] ??= []).push(...this.getInputData());
    Collect.log.push(...this.getInputData());
    return [this.getInputData()];
  }
}

/** A performer that fails while `Flaky.failing` is set, as Send Email does when SMTP refuses. */
class Flaky implements INodeType {
  static failing = false;
  description = {
    displayName: 'Flaky', name: 'flaky', group: ['output'], version: 1, description: '', defaults: { name: 'Flaky' },
    inputs: ['main'], outputs: ['main'], properties: [],
  } as unknown as INodeType['description'];
  /** Recipients the relay refuses for good: like Send Email, items are sent in order and the first refusal ends the execution. */
  static refuse = new Set<string>();
  /** While set, every execution waits here: a send still in flight. */
  static gate: Promise<void> | null = null;
  async execute(this: import('n8n-workflow').IExecuteFunctions) {
    if (Flaky.gate) await Flaky.gate;
    if (Flaky.failing) throw new wf.NodeOperationError(this.getNode(), 'Connection refused (the mail server is down)');
    for (const [i, item] of this.getInputData().entries()) {
      if (Flaky.refuse.has(String(item.json.to))) throw new wf.NodeOperationError(this.getNode(), `Message failed: 550 5.1.1 <${String(item.json.to)}>: Recipient address rejected`, { itemIndex: i });
      Collect.log.push(item);
    }
    return [this.getInputData()];
  }
}

let loaded: Promise<Record<string, INodeType>> | null = null;
async function nodeTypesOfPackage(): Promise<Record<string, INodeType>> {
  loaded ??= (async () => {
    const loader = new core.PackageDirectoryLoader(root);
    await loader.loadAll();
    const types: Record<string, INodeType> = {};
    for (const [name, data] of Object.entries(loader.nodeTypes)) types[name.includes('.') ? name : `${loader.packageName}.${name}`] = data.type as INodeType;
    return types;
  })();
  return loaded;
}

export interface N8nHarness {
  clock: VirtualClock;
  dir: string;
  seen: Record<string, INodeExecutionData[]>;
  /** What performers received, in order. */
  log: INodeExecutionData[];
  runs: IRun[];
  /** Activates a workflow's Cadence Trigger(s), as n8n does on activation. */
  activate(nodes: Partial<INode>[], connections: Record<string, unknown>, mode?: WorkflowActivateMode): Promise<void>;
  deactivate(): Promise<void>;
  /**
   * Runs the active workflow's published graph once from its first node, as a production webhook
   * execution does: same workflow id as the activated one, whose trigger n8n did not re-register.
   */
  runPublished(nodes: Partial<INode>[], connections: Record<string, unknown>, items: INodeExecutionData[]): Promise<IRun>;
  /** Runs a workflow once from its first node with `items` (an Enroll, a Record Outcome…). */
  run(nodes: Partial<INode>[], connections: Record<string, unknown>, items: INodeExecutionData[]): Promise<IRun>;
  /** Serves one HTTP request with a webhook node, as n8n's webhook server does: through n8n-core's WebhookContext. */
  webhook(node: Partial<INode>, req: IncomingMessage, res: ServerResponse): Promise<IWebhookResponseData>;
  /** Moves virtual time, ticking the engine; every emitted batch runs as a real execution. */
  advance(ms: number): Promise<void>;
  engine(): Promise<import('../../nodes/n8n/shared/host').CadenzaEngine>;
  /** The credential every Cadenza node of the harness gets. */
  creds: import('../../nodes/n8n/shared/host').CadenzaCredentials;
  close(): Promise<void>;
}

export async function n8nHarness(start: number, credentials: Record<string, string> = {}): Promise<N8nHarness> {
  const types = { ...(await nodeTypesOfPackage()), [T.collect]: new Collect(), [T.flaky]: new Flaky() };
  Flaky.failing = false;
  const nodeTypes = {
    getByName: (t: string) => types[t],
    getByNameAndVersion: (t: string, v?: number) => {
      if (!types[t]) throw new Error(`unknown node type ${t}`);
      return wf.NodeHelpers.getVersionedNodeType(types[t], v);
    },
    getKnownTypes: () => ({}),
  } as unknown as import('n8n-workflow').INodeTypes;
  const dir = mkdtempSync(join(tmpdir(), 'cadenza-n8n-'));
  const clock = new VirtualClock(start);
  host.configureCadenza({ clock, manualTick: true });
  const creds = { storePath: await hostStoreSpec(dir), secret: 'n8n-test', timezone: 'UTC', sender: 'sales@acme.example', ...credentials };
  Collect.seen = {};
  Collect.log = [];
  const runs: IRun[] = [];
  const pending: Promise<unknown>[] = [];
  let active: { responses: ITriggerResponse[] } | null = null;

  const additionalData = (hooks: InstanceType<typeof core.ExecutionLifecycleHooks>) =>
    ({
      hooks, executionId: hooks.executionId, restApiUrl: 'http://localhost:5678/rest', instanceBaseUrl: 'http://localhost:5678/',
      formWaitingBaseUrl: 'http://localhost:5678/form-waiting', webhookBaseUrl: 'http://localhost:5678/webhook',
      webhookWaitingBaseUrl: 'http://localhost:5678/webhook-waiting', webhookTestBaseUrl: 'http://localhost:5678/webhook-test',
      variables: {}, currentNodeParameters: undefined,
      credentialsHelper: {
        getDecrypted: async () => creds, isCredentialUsableByNode: () => true, getParentTypes: () => [], getCredentialsProperties: () => [],
        authenticate: async (_c: unknown, _t: unknown, r: unknown) => r, preAuthentication: async () => undefined, runPreAuthentication: async () => undefined,
        getCredentials: async () => ({}), updateCredentials: async () => {}, updateCredentialsOauthTokenData: async () => {},
      },
      executeWorkflow: async () => ({}), getRunExecutionData: async () => undefined, logAiEvent: () => {}, startRunnerTask: async () => ({}),
    }) as unknown as IWorkflowExecuteAdditionalData;

  const full = (nodes: Partial<INode>[]): INode[] =>
    nodes.map((n, i) => ({
      id: n.id ?? `node-${i}`, name: n.name ?? `Node ${i}`, type: n.type!, typeVersion: 1, position: [i * 200, 0], parameters: n.parameters ?? {},
      ...(n.type?.startsWith(PKG) && n.type !== T.step && n.type !== T.branch && n.type !== T.check ? { credentials: { cadenzaApi: { id: '1', name: 'Cadenza test' } } } : {}),
      ...n,
    })) as INode[];

  let counter = 0;
  /** One execution through WorkflowExecute, starting at `start` with `data` on its input. */
  async function execute(workflow: import('n8n-workflow').Workflow, startNode: INode, data: INodeExecutionData[], mode: 'trigger' | 'manual' | 'webhook'): Promise<IRun> {
    const id = `ex${++counter}`;
    const hooks = new core.ExecutionLifecycleHooks(mode, id, { id: workflow.id, name: workflow.name, nodes: Object.values(workflow.nodes), connections: workflow.connectionsBySourceNode, active: true, settings: {}, createdAt: new Date(), updatedAt: new Date() } as never);
    const done = new Promise<IRun>((r) => hooks.addHandler('workflowExecuteAfter', (run: IRun) => r(run)));
    const runData = wf.createRunExecutionData({ executionData: { nodeExecutionStack: [{ node: startNode, data: { main: [data] }, source: null }] } });
    void new core.WorkflowExecute(additionalData(hooks), mode, runData).processRunExecutionData(workflow);
    const run = await done;
    runs.push(run);
    const err = run.data.resultData.error;
    if (err) throw Object.assign(new Error(err.message), { n8n: err, run });
    return run;
  }

  const h: N8nHarness = {
    clock, dir, seen: Collect.seen, log: Collect.log, runs,
    async activate(nodes, connections, mode = 'activate') {
      const all = full(nodes);
      const workflow = new wf.Workflow({ id: 'wf1', name: 'Cadence workflow', nodes: all, connections: connections as never, active: true, nodeTypes });
      const responses: ITriggerResponse[] = [];
      for (const node of all.filter((n) => n.type === T.trigger)) {
        // As n8n's ActiveWorkflowManager does: the done promise settles with the execution's result.
        const emit = (data: INodeExecutionData[][], _response?: unknown, done?: { resolve(run: IRun): void }) => {
          const ran = execute(workflow, node, data[0], 'trigger');
          ran.then((run) => done?.resolve(run), (e: { run?: IRun }) => done?.resolve(e.run!));
          pending.push(ran);
        };
        const ctx = new core.TriggerContext(workflow, node, additionalData(new core.ExecutionLifecycleHooks('trigger', 'activation', {} as never)), 'trigger', mode, emit as never);
        responses.push((await types[T.trigger].trigger!.call(ctx as never)) as ITriggerResponse);
      }
      active = { responses };
    },
    async deactivate() {
      for (const r of active?.responses ?? []) await r.closeFunction?.();
      active = null;
    },
    async runPublished(nodes, connections, items) {
      const all = full(nodes);
      const workflow = new wf.Workflow({ id: 'wf1', name: 'Cadence workflow', nodes: all, connections: connections as never, active: true, nodeTypes });
      return execute(workflow, all[0], items, 'webhook');
    },
    async run(nodes, connections, items) {
      const all = full(nodes);
      const workflow = new wf.Workflow({ id: 'wf2', name: 'Helper workflow', nodes: all, connections: connections as never, active: false, nodeTypes });
      return execute(workflow, all[0], items, 'manual');
    },
    async advance(ms) {
      const engine = await h.engine();
      await engine.runtime.runUntil(clock.now() + ms, clock, { cadences: engine.cadences() });
      while (pending.length) await pending.shift();
    },
    async webhook(node, req, res) {
      const [n] = full([node]);
      const workflow = new wf.Workflow({ id: 'wf3', name: 'Webhook workflow', nodes: [n], connections: {}, active: true, nodeTypes });
      const type = types[n.type];
      const description = type.description.webhooks!.find((w) => w.httpMethod === req.method)!;
      const data = { ...additionalData(new core.ExecutionLifecycleHooks('webhook', 'webhook', {} as never)), httpRequest: req, httpResponse: res } as IWorkflowExecuteAdditionalData;
      const webhookData = { httpMethod: req.method, node: n.name, path: description.path, webhookDescription: description, workflowId: workflow.id, workflowExecuteAdditionalData: data };
      const ctx = new core.WebhookContext(workflow, n, data, 'webhook', webhookData as never, [], null);
      return type.webhook!.call(ctx as never);
    },
    engine: () => host.engineFor(creds),
    creds,
    async close() {
      await h.deactivate();
      while (pending.length) await pending.shift()!.catch(() => undefined);
      await host.closeEngines();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export { Collect, Flaky };
