// A follow-up rendered by the engine's own renderer against a sample record, for the editors'
// preview, and the merge fields those records offer. Nothing is stored or sent.
import type { ActionRef, RecordSnapshot } from '../machine/types';
import type { FollowUpNode } from '../model/types';
import { render, type RenderOptions } from '../render/render';

/** The record a preview uses when the store has none of the module yet. */
export const SAMPLE_RECORD: RecordSnapshot = {
  id: 'sample-1', module: 'Leads', unsubscribed: false,
  data: { First_Name: 'Ada', Last_Name: 'Lovelace', Email: 'ada@example.com', Company: 'Analytical Engines Ltd', Lead_Status: 'Sales-Ready', Owner: 'owner' },
};

/** Fields a template can merge: the records' own keys, then what the renderer adds. */
export function mergeFields(records: readonly RecordSnapshot[]): string[] {
  const keys = new Set<string>();
  for (const r of records) for (const k of Object.keys(r.data)) if (k !== 'Owner') keys.add(k);
  return [...[...keys].sort(), 'Record_Id', 'Owner.name', 'Owner.email', 'Owner.signature'];
}

export interface Preview {
  recordId: string;
  to?: string;
  subject: string;
  /** Email: the HTML body as sent (without tracking); task or call: the description. */
  body: string;
  html: boolean;
}

export function previewFollowUp(node: FollowUpNode, record: RecordSnapshot, opts: Pick<RenderOptions, 'defaultSender' | 'users' | 'templates'>, now: number): Preview {
  const ref: ActionRef = { key: 'preview', enrollmentId: 'preview', cadenceId: 'preview', version: 0, recordId: record.id, nodeId: node.id, channel: node.channel };
  const out = render(ref, node, record, { ...opts, secret: 'preview', baseUrl: 'https://example.invalid/cadenza', tracking: false }, now);
  if ('html' in out) return { recordId: record.id, to: out.to, subject: out.subject, body: out.html, html: true };
  if ('description' in out) return { recordId: record.id, subject: out.subject, body: out.description, html: false };
  return { recordId: record.id, to: out.to, subject: out.templateId, body: JSON.stringify(out.params, null, 2), html: false };
}
