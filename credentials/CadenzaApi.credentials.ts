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
      typeOptions: { password: false },
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
  ];
}
