// Follow-up Step: output 1 carries its due actions to whatever performs them (Send Email, Gmail, a CRM);
// output 2 passes items on to the steps after it.
import type { IExecuteFunctions, INodeExecutionData, INodeType, INodeTypeDescription } from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';
import { followUpNode } from '../../../engine/model/formats/params';
import { followUpFields } from '../shared/fields';
import { executeGraphNode } from '../shared/graph-node';

export class FollowUpStep implements INodeType {
  description: INodeTypeDescription = {
    displayName: 'Follow-up Step',
    name: 'followUpStep',
    icon: { light: 'file:cadenza.svg', dark: 'file:cadenza.dark.svg' },
    group: ['transform'],
    version: 1,
    subtitle: '={{$parameter["channel"] + ($parameter["delay"] ? " +" + $parameter["delay"] + " " + $parameter["delayUnit"] : "")}}',
    description: 'An email, task, call or WhatsApp message of a cadence, after a delay',
    defaults: { name: 'Follow-up Step' },
    inputs: [NodeConnectionTypes.Main],
    outputs: [NodeConnectionTypes.Main, NodeConnectionTypes.Main],
    outputNames: ['Action', 'Next Step'],
    properties: followUpFields,
  };

  async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
    return executeGraphNode(this, followUpNode, () => 2);
  }
}
