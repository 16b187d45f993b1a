// Cadence Trigger: activating the workflow publishes the cadence drawn after it; due follow-ups come
// out of it in batches, routed through the graph to the step that owns them.
import type {
  ICredentialTestFunctions, ICredentialsDecrypted, INode, INodeCredentialTestResult, INodeExecutionData, INodeType, INodeTypeDescription, ITriggerFunctions, ITriggerResponse,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';
import { compileN8nTrigger, type N8nConnections } from '../../../engine/model/formats/n8n';
import { validateDefinition } from '../../../engine/model/validate';
import { triggerFields } from '../shared/fields';
import { toNodeError, describeProblem } from '../shared/errors';
import { engineFor, type CadenzaCredentials } from '../shared/host';

/** The graph the trigger belongs to. n8n-core's contexts carry the Workflow (verified on n8n-core 2.41). */
interface LiveWorkflow {
  id?: string;
  name?: string;
  nodes: Record<string, INode>;
  connectionsBySourceNode: N8nConnections;
}

async function cadenzaStoreTest(this: ICredentialTestFunctions, credential: ICredentialsDecrypted): Promise<INodeCredentialTestResult> {
  try {
    const engine = await engineFor((credential.data ?? {}) as CadenzaCredentials);
    await engine.runtime.store.listCadences();
    return { status: 'OK', message: `Store ${engine.where} is ready` };
  } catch (e) {
    return { status: 'Error', message: `Cannot open the Cadenza store: ${(e as Error).message}` };
  }
}

export class CadenceTrigger implements INodeType {
  description: INodeTypeDescription = {
    displayName: 'Cadence Trigger',
    name: 'cadenceTrigger',
    icon: { light: 'file:cadenza.svg', dark: 'file:cadenza.dark.svg' },
    group: ['trigger'],
    version: 1,
    subtitle: '={{$parameter["module"] + " · " + $parameter["mode"]}}',
    description: 'Starts a cadence: follow-ups drawn after it run on schedule, in batches',
    defaults: { name: 'Cadence Trigger' },
    inputs: [],
    outputs: [NodeConnectionTypes.Main],
    outputNames: ['First Step'],
    credentials: [{ name: 'cadenzaApi', required: true, testedBy: 'cadenzaStoreTest' }],
    properties: triggerFields,
  };

  methods = { credentialTest: { cadenzaStoreTest } };

  async trigger(this: ITriggerFunctions): Promise<ITriggerResponse> {
    const node = this.getNode();
    const workflow = (this as unknown as { workflow?: LiveWorkflow }).workflow;
    if (!workflow?.connectionsBySourceNode) throw new NodeOperationError(node, 'This n8n version does not give triggers their workflow graph; Cadenza needs n8n-core 2.x');
    const def = compileN8nTrigger({ id: workflow.id, name: workflow.name, nodes: Object.values(workflow.nodes), connections: workflow.connectionsBySourceNode }, node.name);
    const mode = this.getActivationMode();
    if (mode === 'manual') {
      // A test run publishes nothing: it shows the cadence as it would be published, and what is wrong with it.
      return {
        manualTriggerFunction: async () => {
          const problems = validateDefinition(def).map((p) => describeProblem(p, def));
          this.emit([[{ json: { cadenza: { kind: 'preview' }, definition: def, problems, valid: problems.length === 0 } }]]);
        },
      };
    }
    const engine = await engineFor(await this.getCredentials<CadenzaCredentials>('cadenzaApi'));
    try {
      // V3: switched off and on again, so what fell due meanwhile was halted and must not run now.
      // (A restart activates with "init" and a new leader with "leadershipChange": nothing is halted then.)
      const row = await engine.runtime.store.getCadence(def.id);
      if (mode === 'activate' && row?.status === 'active') await engine.runtime.deactivate(def.id, 'n8n');
      await engine.runtime.deploy(def, 'n8n');
    } catch (err) {
      throw toNodeError(node, err, def);
    }
    engine.serve(def, (items) => this.emit([items as INodeExecutionData[]]));
    return { closeFunction: async () => engine.unserve(def.id) };
  }
}
