// Outcome Branch: one output per outcome of the step before it, plus a timeout output; like the
// Switch node, the outputs follow the configuration.
import type { IExecuteFunctions, INodeExecutionData, INodeType, INodeTypeDescription } from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';
import { branchNode, branchPorts } from '../../../engine/model/formats/params';
import { branchFields } from '../shared/fields';
import { executeGraphNode } from '../shared/graph-node';

/** Evaluated by n8n from the parameters (its source is embedded in an expression): keep it plain JS. */
const configuredOutputs = (p: { outcomes?: string[]; timeout?: number }) =>
  [...(p.outcomes && p.outcomes.length ? p.outcomes : ['replied']), ...(Number(p.timeout) > 0 ? ['timeout'] : [])].map((o) => ({ type: 'main', displayName: o }));

export class OutcomeBranch implements INodeType {
  description: INodeTypeDescription = {
    displayName: 'Outcome Branch',
    name: 'outcomeBranch',
    icon: { light: 'file:cadenza.svg', dark: 'file:cadenza.dark.svg' },
    group: ['transform'],
    version: 1,
    subtitle: '={{($parameter["outcomes"] || []).join(" / ")}}',
    description: 'Branches a cadence on how the record responded to the step before it',
    defaults: { name: 'Outcome Branch' },
    inputs: [NodeConnectionTypes.Main],
    outputs: `={{(${configuredOutputs})($parameter)}}`,
    properties: branchFields,
  };

  async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
    return executeGraphNode(this, branchNode, (p) => branchPorts(p).length);
  }
}
