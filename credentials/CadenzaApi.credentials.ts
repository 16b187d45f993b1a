// The engine connection: where the store lives and how links are signed. Imports nothing from the engine.
import type { ICredentialType, INodeProperties } from 'n8n-workflow';

export class CadenzaApi implements ICredentialType {
  name = 'cadenzaApi';

  displayName = 'Cadenza Engine API';

  icon = { light: 'file:cadenza.svg', dark: 'file:cadenza.dark.svg' } as const;

  documentationUrl = 'https://www.npmjs.com/package/@cadenza-oss/n8n-nodes-cadenza';

  properties: INodeProperties[] = [
    {
      displayName: 'Store',
      name: 'storePath',
      type: 'string',
      // A postgres:// URL carries the database password.
      typeOptions: { password: true },
      default: 'cadenza.db',
      description: 'A SQLite file (relative paths are inside the n8n user folder), or a postgres:// URL shared by every n8n main and worker',
    },
    {
      displayName: 'Link Signing Secret',
      name: 'secret',
      type: 'string',
      typeOptions: { password: true },
      default: '',
      description: 'Signs tracking and unsubscribe links. Leave empty to generate one and keep it in the store.',
    },
    { displayName: 'Default Time Zone', name: 'timezone', type: 'string', default: 'UTC', placeholder: 'Europe/London' },
    { displayName: 'Default Sender', name: 'sender', type: 'string', default: '', placeholder: 'sales@example.com' },
    {
      displayName: 'Public URL', name: 'baseUrl', type: 'string', default: '', placeholder: 'https://n8n.example.com/webhook/<Cadenza Tracking webhook id>',
      description: 'Base of the open, click and unsubscribe links in emails: the Production URL of a Cadenza Tracking node without its /t/:kind/:token (or a cadenza serve / Node-RED /cadenza URL on the same store)',
    },
    // The same settings as `cadenza serve` and the Node-RED config node: limits (C3), WhatsApp templates (C4), retry (D6).
    {
      displayName: 'Edition', name: 'edition', type: 'options', default: 'enterprise',
      options: [
        { name: 'Standard (20 Created / 10 Active per Module)', value: 'standard' },
        { name: 'Professional (40 / 20)', value: 'professional' },
        { name: 'Enterprise (60 / 30)', value: 'enterprise' },
        { name: 'Ultimate (70 / 50)', value: 'ultimate' },
      ],
      description: 'Cadences per module that may be created and active at once',
    },
    { displayName: 'Add-Ons', name: 'addOns', type: 'number', default: 0, description: 'Extra cadences per module (active at most 70)' },
    {
      displayName: 'Approved WhatsApp Templates', name: 'whatsappTemplates', type: 'string', default: '', placeholder: 'welcome_v1, reminder_v2',
      description: 'Comma-separated template IDs; a WhatsApp step with any other is refused. Empty: any ID is accepted.',
    },
    {
      displayName: 'Retry Failing Deliveries For (Hours)', name: 'retryHours', type: 'number', default: 72,
      description: 'How long a follow-up whose performer keeps failing is retried before the step fails',
    },
    {
      displayName: 'Contact Limits (JSON)', name: 'contactLimits', type: 'string', typeOptions: { rows: 3 }, default: '',
      placeholder: '[{"channel": "email", "max": 3, "days": 7}, {"max": 1, "days": 1}]',
      description: 'At most so many messages to one person in so many days, across all cadences (F13). Without "channel": emails, WhatsApp messages and calls together. A follow-up over a limit waits for the first day with room; a trigger can be exempt.',
    },
    {
      displayName: 'Users (JSON)', name: 'users', type: 'string', typeOptions: { rows: 4 }, default: '',
      placeholder: '{"u1": {"name": "Ann Lee", "email": "ann@example.com", "signature": "<p>Ann</p>"}}',
      description: "The record owners, by the ID in a record's Owner field: {{Owner.name}}, {{Owner.email}} and the signature, {{{Owner.signature}}} (three braces: its HTML kept), merge from here (F6), never from the record",
    },
  ];
}
