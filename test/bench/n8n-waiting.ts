// The peer for "bytes stored per waiting enrollment": what n8n keeps for one execution waiting in a
// Wait node. The same graph as the bench cadence (record in → email → wait 2 days → email) runs
// through n8n-core's WorkflowExecute until the Wait node puts it to wait; n8n's server then stores the
// execution's run data (serialised with `flatted`, as n8n does; plain JSON if flatted is missing) and
// a copy of the workflow (execution_data); its execution row and indexes are not counted.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IDataObject, IExecuteFunctions, INode, INodeExecutionData, INodeType, IRun, IWorkflowExecuteAdditionalData } from 'n8n-workflow';

/* eslint-disable @typescript-eslint/no-require-imports */
if (!process.env.N8N_USER_FOLDER) {
  // n8n-core writes its instance settings there on load; gone when the bench ends.
  const folder = mkdtempSync(join(tmpdir(), 'cadenza-bench-n8n-'));
  process.env.N8N_USER_FOLDER = folder;
  process.on('exit', () => rmSync(folder, { recursive: true, force: true }));
}
const core = require('n8n-core') as typeof import('n8n-core');
const wf = require('n8n-workflow') as typeof import('n8n-workflow');

const node = (name: string, run: (ctx: IExecuteFunctions) => Promise<INodeExecutionData[][]>): INodeType =>
  ({
    description: { displayName: name, name, group: ['transform'], version: 1, description: '', defaults: { name }, inputs: ['main'], outputs: ['main'], properties: [] },
    execute(this: IExecuteFunctions) {
      return run(this);
    },
  }) as unknown as INodeType;

/** Stand-ins with the behaviour that shapes run data: Send Email answers with nodemailer's info, Wait waits. */
const types: Record<string, INodeType> = {
  'bench.start': node('start', async (ctx) => [ctx.getInputData()]),
  'bench.sendEmail': node('sendEmail', async (ctx) => [ctx.getInputData().map((item, i) => ({
    json: { accepted: [String(item.json.Email)], rejected: [], ehlo: ['PIPELINING', '8BITMIME', 'SMTPUTF8'], envelopeTime: 3, messageTime: 4, messageSize: 1187,
      response: '250 2.0.0 Ok: queued as 4Q1ZbK3Xq5z9', envelope: { from: 'sales@acme.example', to: [String(item.json.Email)] }, messageId: `<a1b2c3d4-${i}@acme.example>` },
    pairedItem: { item: i },
  }))]),
  'bench.wait': node('wait', async (ctx) => {
    await ctx.putExecutionToWait(new Date(Date.parse('2026-03-04T08:00:00Z')));
    return [ctx.getInputData()];
  }),
};

export async function n8nWaitingExecutionBytes(record: IDataObject): Promise<number> {
  const nodeTypes = {
    getByName: (t: string) => types[t],
    getByNameAndVersion: (t: string, v?: number) => wf.NodeHelpers.getVersionedNodeType(types[t], v),
    getKnownTypes: () => ({}),
  } as unknown as import('n8n-workflow').INodeTypes;
  const email = (name: string, subject: string, html: string, x: number) => ({
    id: name, name, type: 'bench.sendEmail', typeVersion: 1, position: [x, 0] as [number, number],
    parameters: { fromEmail: 'sales@acme.example', toEmail: '={{ $json.Email }}', subject, emailFormat: 'html', html, options: {} },
  });
  const nodes: INode[] = [
    { id: 'start', name: 'Lead', type: 'bench.start', typeVersion: 1, position: [0, 0], parameters: {} },
    email('Welcome email', '=Hi {{ $json.First_Name }}', '=<p>Hello {{ $json.First_Name }}</p>', 200),
    { id: 'wait', name: 'Wait 2 days', type: 'bench.wait', typeVersion: 1, position: [400, 0], parameters: { resume: 'timeInterval', amount: 2, unit: 'days' } },
    email('Second email', '=Again', '=Again', 600),
  ];
  const connections = {
    Lead: { main: [[{ node: 'Welcome email', type: 'main', index: 0 }]] },
    'Welcome email': { main: [[{ node: 'Wait 2 days', type: 'main', index: 0 }]] },
    'Wait 2 days': { main: [[{ node: 'Second email', type: 'main', index: 0 }]] },
  };
  const workflow = new wf.Workflow({ id: 'bench', name: 'Sales follow-up', nodes, connections: connections as never, active: true, nodeTypes });
  const workflowData = { id: 'bench', name: 'Sales follow-up', nodes, connections, active: true, settings: {} };
  const hooks = new core.ExecutionLifecycleHooks('trigger', 'ex1', workflowData as never);
  const done = new Promise<IRun>((r) => hooks.addHandler('workflowExecuteAfter', (run: IRun) => r(run)));
  const additional = { hooks, executionId: 'ex1', variables: {}, webhookWaitingBaseUrl: 'http://localhost:5678/webhook-waiting', formWaitingBaseUrl: 'http://localhost:5678/form-waiting' } as unknown as IWorkflowExecuteAdditionalData;
  const data = wf.createRunExecutionData({ executionData: { nodeExecutionStack: [{ node: nodes[0], data: { main: [[{ json: record }]] }, source: null }] } });
  void new core.WorkflowExecute(additional, 'trigger', data).processRunExecutionData(workflow);
  const run = await done;
  if (!run.waitTill || run.status !== 'waiting') throw new Error(`the n8n execution did not wait (status ${run.status})`);
  let stringify = JSON.stringify;
  try {
    stringify = require('flatted').stringify; // comes with n8n-core (@n8n/backend-common)
  } catch {
    // JSON: a lower bound
  }
  return Buffer.byteLength(stringify(run.data)) + Buffer.byteLength(JSON.stringify(workflowData));
}
