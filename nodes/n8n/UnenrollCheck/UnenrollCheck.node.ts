// Un-enroll Check: exit criteria for the rest of its path. Output 1 continues; output 2 brings the
// records that leave by it.
import type { IExecuteFunctions, INodeExecutionData, INodeType, INodeTypeDescription } from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';
import { checkNode } from '../../../engine/model/formats/params';
import { checkFields } from '../shared/fields';
import { executeGraphNode } from '../shared/graph-node';

export class UnenrollCheck implements INodeType {
  description: INodeTypeDescription = {
    displayName: 'Un-enroll Check',
    name: 'unenrollCheck',
    icon: { light: 'file:cadenza.svg', dark: 'file:cadenza.dark.svg' },
    group: ['transform'],
    version: 1,
    subtitle: '={{$parameter["criteria"]}}',
    description: 'Exit criteria for the rest of a cadence path',
    defaults: { name: 'Un-enroll Check' },
    inputs: [NodeConnectionTypes.Main],
    outputs: [NodeConnectionTypes.Main, NodeConnectionTypes.Main],
    outputNames: ['Continue', 'Left'],
    properties: checkFields,
  };

  async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
    return executeGraphNode(this, checkNode, () => 2);
  }
}
