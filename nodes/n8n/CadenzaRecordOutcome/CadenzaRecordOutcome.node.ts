// Record Outcome: a reply from an Email Trigger (IMAP) or Gmail, matched by In-Reply-To, or an outcome
// with its key from a webhook or a call log. Output 1: recorded; output 2: not matched or refused.
import type { IDataObject, IExecuteFunctions, INodeExecutionData, INodeType, INodeTypeDescription } from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';
import { CadenzaError } from '../../../engine/model/errors';
import { OUTCOME_OPTIONS } from '../shared/fields';
import { cadenzaCredential, credentialTest } from '../shared/credential-test';
import { engineFor, type CadenzaCredentials } from '../shared/host';

export class CadenzaRecordOutcome implements INodeType {
  description: INodeTypeDescription = {
    displayName: 'Cadenza Record Outcome',
    name: 'cadenzaRecordOutcome',
    icon: { light: 'file:cadenza.svg', dark: 'file:cadenza.dark.svg' },
    group: ['transform'],
    version: 1,
    subtitle: '={{$parameter["mode"]}}',
    description: 'Record how a record responded to a cadence step',
    defaults: { name: 'Cadenza Record Outcome' },
    inputs: [NodeConnectionTypes.Main],
    outputs: [NodeConnectionTypes.Main, NodeConnectionTypes.Main],
    outputNames: ['Recorded', 'Not Matched'],
    usableAsTool: true,
    credentials: [cadenzaCredential],
    properties: [
      {
        displayName: 'Input', name: 'mode', type: 'options', default: 'reply', noDataExpression: true,
        options: [
          { name: 'Email Reply', value: 'reply', description: 'An item from an email trigger: subject and headers (In-Reply-To, References)' },
          { name: 'Outcome With Key', value: 'outcome', description: 'The step\'s idempotency key and an outcome' },
        ],
      },
      { displayName: 'Key', name: 'key', type: 'string', default: '={{ $json.cadenza?.key ?? $json.key }}', displayOptions: { show: { mode: ['outcome'] } }, description: 'The key of the step the outcome is about: the item\'s cadenza.key from the step\'s Action output, carried through your performer or call log' },
      { displayName: 'Outcome', name: 'outcome', type: 'options', default: 'completed', options: OUTCOME_OPTIONS, displayOptions: { show: { mode: ['outcome'] } }, description: 'What happened: an Outcome Branch after the step takes the matching output' },
    ],
  };

  methods = { credentialTest };

  async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
    const node = this.getNode();
    const items = this.getInputData();
    const engine = await engineFor(await this.getCredentials<CadenzaCredentials>('cadenzaApi'));
    const recorded: INodeExecutionData[] = [];
    const unmatched: INodeExecutionData[] = [];
    for (let i = 0; i < items.length; i++) {
      const json = items[i].json;
      try {
        if (this.getNodeParameter('mode', i) === 'reply') {
          // n8n's Email Trigger (IMAP): "simple" puts From and Subject on top and every other header under
          // `metadata`; "resolved" gives mailparser's `from: { text }`, `inReplyTo`, `references`, `headers`.
          const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
          const headers = { ...obj(json.metadata), ...obj(json.headers ?? json.header) } as Record<string, string>;
          const from = typeof json.from === 'string' ? json.from : typeof obj(json.from).text === 'string' ? (obj(json.from).text as string) : headers.from;
          const r = await engine.runtime.recordReply({ subject: String(json.subject ?? json.topic ?? ''), headers, inReplyTo: json.inReplyTo, references: json.references, from });
          if (r) recorded.push({ json: r as unknown as IDataObject, pairedItem: { item: i } });
          else unmatched.push({ json: { matched: false, reason: 'no Cadenza Message-ID in In-Reply-To or References, and no active enrollment emailed its sender' }, pairedItem: { item: i } });
        } else {
          const key = this.getNodeParameter('key', i) as string;
          const outcome = this.getNodeParameter('outcome', i) as string;
          const r = await engine.runtime.recordOutcome({ key, outcome });
          recorded.push({ json: { key, ...r }, pairedItem: { item: i } });
        }
      } catch (err) {
        if (err instanceof CadenzaError) unmatched.push({ json: { matched: false, reason: err.message, rule: err.rule }, pairedItem: { item: i } });
        else if (this.continueOnFail()) unmatched.push({ json: { error: (err as Error).message }, pairedItem: { item: i } });
        else throw new NodeOperationError(node, err as Error, { itemIndex: i });
      }
    }
    return [recorded, unmatched];
  }
}
