// Enroll: put records into a cadence or take them out. One answer per item: "Done" or "Skipped" with
// the reason and rule. Enrolling many items is one engine call.
import type { IDataObject, IExecuteFunctions, ILoadOptionsFunctions, INodeExecutionData, INodePropertyOptions, INodeType, INodeTypeDescription } from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';
import { cadenceIdOf } from '../../../engine/model/formats/n8n';
import type { CadenceDefinition } from '../../../engine/model/types';
import { runRecordAction, type RecordAction } from '../../../engine/runtime/record-actions';
import { cadenzaCredential, credentialTest } from '../shared/credential-test';
import { toNodeError } from '../shared/errors';
import { engineFor, type CadenzaCredentials } from '../shared/host';
import { compileLive, isTrigger, runsPublishedGraph, workflowOf } from '../shared/live-graph';

const THIS_WORKFLOW = '__this_workflow__';

/**
 * "The cadence in this workflow": the id its Cadence Trigger publishes under, so examples import
 * anywhere, and the definition compiled from the graph this execution runs.
 */
function resolveCadence(ctx: IExecuteFunctions, value: string): { id: string; live?: CadenceDefinition } {
  if (value !== THIS_WORKFLOW) return { id: value };
  const wf = workflowOf(ctx);
  const triggers = Object.values(wf?.nodes ?? {}).filter((n) => isTrigger(n) && !n.disabled);
  if (!wf || triggers.length !== 1) throw new NodeOperationError(ctx.getNode(), `Parameter "cadence": this workflow has ${triggers.length} active Cadence Triggers; choose the cadence by ID`);
  return { id: cadenceIdOf(wf.id, triggers[0]), live: compileLive(wf, triggers[0].name) };
}

type Action = RecordAction;

export class CadenzaEnroll implements INodeType {
  description: INodeTypeDescription = {
    displayName: 'Cadenza Enroll',
    name: 'cadenzaEnroll',
    icon: { light: 'file:cadenza.svg', dark: 'file:cadenza.dark.svg' },
    group: ['transform'],
    version: 1,
    subtitle: '={{$parameter["action"]}}',
    description: 'Enroll records in a cadence, re-enroll, un-enroll, or update a record',
    defaults: { name: 'Cadenza Enroll' },
    inputs: [NodeConnectionTypes.Main],
    outputs: [NodeConnectionTypes.Main, NodeConnectionTypes.Main],
    outputNames: ['Done', 'Skipped'],
    usableAsTool: true,
    credentials: [cadenzaCredential],
    properties: [
      { displayName: 'Cadence Name or ID', name: 'cadence', type: 'options', typeOptions: { loadOptionsMethod: 'getCadences' }, default: '', required: true, description: 'Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>' },
      {
        displayName: 'Action', name: 'action', type: 'options', default: 'enroll', noDataExpression: true,
        options: [
          { name: 'Converted', value: 'convert', description: 'The record leaves all its cadences', action: 'Mark records as converted' },
          { name: 'Enroll', value: 'enroll', description: 'Put the records in the cadence', action: 'Enroll records in a cadence' },
          { name: 'Re-Enroll: Restart', value: 'restart', description: 'Start again from the first step', action: 'Restart records in a cadence' },
          { name: 'Re-Enroll: Resume', value: 'resume', description: 'Continue at the step where it stopped', action: 'Resume records in a cadence' },
          { name: 'Retry Failed Step', value: 'retry', description: 'Run the step that failed again, under the same key (nothing delivered is repeated)', action: 'Retry the failed step of records' },
          { name: 'Un-Enroll', value: 'unenroll', description: 'Take the records out of the cadence', action: 'Un enroll records from a cadence' },
          { name: 'Unsubscribe', value: 'unsubscribe', description: 'No more emails from any cadence', action: 'Unsubscribe records from emails' },
          { name: 'Update Record', value: 'update', description: 'Save the record; view cadences enroll it when it matches, exit criteria are checked', action: 'Update a record' },
        ],
      },
      { displayName: 'Record ID Field', name: 'idField', type: 'string', default: 'id', description: 'The item field that identifies the record (e.g. "email")' },
      { displayName: 'Actor', name: 'actor', type: 'string', default: 'n8n', description: 'Who is doing this, for the audit log' },
    ],
  };

  methods = {
    credentialTest,
    loadOptions: {
      async getCadences(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
        const engine = await engineFor(await this.getCredentials<CadenzaCredentials>('cadenzaApi'));
        const own = [{ name: 'The Cadence in This Workflow', value: THIS_WORKFLOW }];
        return [...own, ...(await engine.runtime.store.listCadences()).map((c) => ({ name: `${c.name} (${c.module}, ${c.status})`, value: c.id }))];
      },
    },
  };

  async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
    const node = this.getNode();
    const items = this.getInputData();
    const engine = await engineFor(await this.getCredentials<CadenzaCredentials>('cadenzaApi'));
    const rt = engine.runtime;
    const done: INodeExecutionData[] = [];
    const skipped: INodeExecutionData[] = [];
    const put = (ok: boolean, json: IDataObject, item: number) => (ok ? done : skipped).push({ json, pairedItem: { item } });
    const record = (i: number) => {
      const field = this.getNodeParameter('idField', i, 'id') as string;
      const json = items[i].json;
      return field === 'id' || json.id !== undefined ? json : { ...json, id: json[field] };
    };
    const action = this.getNodeParameter('action', 0) as Action;
    const { id: cadence, live } = resolveCadence(this, this.getNodeParameter('cadence', 0) as string);
    const actor = (this.getNodeParameter('actor', 0, 'n8n') as string) || 'n8n';
    // The workflow was published again without its trigger being re-registered (n8n 2.41 does that
    // only when the trigger's own parameters change): records enroll into the graph that is published (V1).
    if (live && runsPublishedGraph(this.getMode())) {
      try {
        await engine.refresh(live);
      } catch (err) {
        throw toNodeError(node, err, live);
      }
    }
    const cadenceRow = await rt.store.getCadence(cadence);
    if (!cadenceRow) throw new NodeOperationError(node, `Parameter "cadence": unknown cadence "${cadence}" (D4)`);
    let results;
    try {
      results = await runRecordAction(rt, cadence, cadenceRow.module, action, items.map((_, i) => record(i)), actor);
    } catch (err) {
      if (!this.continueOnFail()) throw new NodeOperationError(node, err as Error);
      return [[], items.map((_, i) => ({ json: { error: (err as Error).message }, pairedItem: { item: i } }))];
    }
    results.forEach((r, i) => put(r.ok, r.payload as IDataObject, i));
    return [done, skipped];
  }
}
