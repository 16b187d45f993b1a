// Cadence Trigger: activating the workflow publishes the cadence drawn after it; due follow-ups come
// out of it one per execution, routed through the graph to the step that owns them. An action counts
// as delivered only when the execution carrying it succeeds (D5).
import type { INodeExecutionData, INodeType, INodeTypeDescription, IRun, ITriggerFunctions, ITriggerResponse } from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';
import { validateDefinition } from '../../../engine/model/validate';
import { triggerFields } from '../shared/fields';
import { toNodeError, describeProblem } from '../shared/errors';
import { cadenzaCredential, credentialTest } from '../shared/credential-test';
import { engineFor, unserve, type CadenzaCredentials, type CadenzaItem } from '../shared/host';
import { compileLive, wiringProblems, workflowOf } from '../shared/live-graph';

/** Why an execution failed, from its result; undefined when it succeeded. */
function failureOf(run: IRun | undefined): string | undefined {
  if (!run) return 'the execution ended without a result';
  const err = run.data?.resultData?.error;
  if (err) return `${err.message}${(err as { node?: { name?: string } }).node?.name ? ` (node "${(err as { node: { name: string } }).node.name}")` : ''}`;
  if (run.status === 'error' || run.status === 'crashed' || run.status === 'canceled') return `the execution ${run.status}`;
  return undefined;
}

export class CadenceTrigger implements INodeType {
  description: INodeTypeDescription = {
    displayName: 'Cadence Trigger',
    name: 'cadenceTrigger',
    icon: { light: 'file:cadenza.svg', dark: 'file:cadenza.dark.svg' },
    group: ['trigger'],
    version: 1,
    subtitle: '={{$parameter["module"] + " · " + $parameter["mode"]}}',
    description: 'Starts a cadence: follow-ups drawn after it run on schedule',
    defaults: { name: 'Cadence Trigger' },
    inputs: [],
    outputs: [NodeConnectionTypes.Main],
    outputNames: ['First Step'],
    credentials: [cadenzaCredential],
    properties: triggerFields,
  };

  methods = { credentialTest };

  async trigger(this: ITriggerFunctions): Promise<ITriggerResponse> {
    const node = this.getNode();
    const workflow = workflowOf(this);
    if (!workflow) throw new NodeOperationError(node, 'This n8n version does not give triggers their workflow graph; Cadenza needs n8n 1.67 or later');
    const def = compileLive(workflow, node.name);
    const wiring = wiringProblems(workflow, node.name);
    const mode = this.getActivationMode();
    if (mode === 'manual') {
      // A test run publishes nothing: it shows the cadence as it would be published, and what is wrong with it.
      return {
        manualTriggerFunction: async () => {
          const problems = [...wiring, ...validateDefinition(def).map((p) => describeProblem(p, def))];
          this.emit([[{ json: { cadenza: { kind: 'preview' }, definition: def, problems, valid: problems.length === 0 } }]]);
        },
      };
    }
    if (wiring.length) throw new NodeOperationError(node, wiring[0], { description: wiring.length > 1 ? wiring.join('\n') : undefined });
    // n8n's Engine 2.0 refuses triggers that wait for their execution's result, which is how a batch
    // counts as delivered (D5): said here, at publish, rather than as failed hand-offs later.
    if (workflow.settings?.engineType === 'v2') throw new NodeOperationError(node, 'D5 cadence workflows need the default execution engine: Engine 2.0 cannot tell the trigger whether its execution succeeded', { description: 'Set the workflow\'s execution engine back to the default (v1) in its settings.' });
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
    // n8n settles the done promise when the execution ends (in queue mode, when the worker reports it).
    const emit = (items: CadenzaItem[]) => {
      const done = this.helpers.createDeferredPromise<IRun>();
      this.emit([items as INodeExecutionData[]], undefined, done);
      return done.promise.then((run) => {
        const why = failureOf(run);
        if (why) throw new Error(`the n8n execution failed: ${why}`);
      });
    };
    engine.serve(def, emit);
    return { closeFunction: async () => unserve(def.id) };
  }
}
