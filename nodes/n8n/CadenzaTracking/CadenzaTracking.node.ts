// Tracking: serves the open pixel, click redirects and unsubscribe pages of emails a cadence sent, on
// n8n's own webhook server. The links carry signed tokens; the engine's tracking module does the rest
// (the same one `cadenza serve` and Node-RED mount), so a forged link records nothing. Emits nothing:
// what it records reaches the cadences (opened, clicked, unsubscribed) without an execution per hit.
import type { INodeType, INodeTypeDescription, IWebhookFunctions, IWebhookResponseData } from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';
import { trackingHandler } from '../../../engine/http/tracking';
import { cadenzaCredential, credentialTest } from '../shared/credential-test';
import { engineFor, type CadenzaCredentials } from '../shared/host';

export const TRACKING_PATH = 't/:kind/:token';

export class CadenzaTracking implements INodeType {
  description: INodeTypeDescription = {
    displayName: 'Cadenza Tracking',
    name: 'cadenzaTracking',
    icon: { light: 'file:cadenza.svg', dark: 'file:cadenza.dark.svg' },
    group: ['trigger'],
    version: 1,
    subtitle: 'open · click · unsubscribe',
    description: 'Serve the open, click and unsubscribe links of cadence emails',
    defaults: { name: 'Cadenza Tracking' },
    inputs: [],
    outputs: [NodeConnectionTypes.Main],
    credentials: [cadenzaCredential],
    webhooks: [
      // Full path: n8n registers a path with parameters beneath the node's webhook id, so the links are
      // /webhook/<webhook id>/t/:kind/:token. Without the flag it prefixes the id a second time.
      { name: 'default', httpMethod: 'GET', responseMode: 'onReceived', path: TRACKING_PATH, isFullPath: true },
      // The unsubscribe page's button and RFC 8058 one-click unsubscribe post to the same link.
      { name: 'default', httpMethod: 'POST', responseMode: 'onReceived', path: TRACKING_PATH, isFullPath: true },
    ],
    properties: [
      {
        displayName:
          "Set the credential's Public URL to this node's Production URL without the trailing /t/:kind/:token (https://your-n8n/webhook/&lt;ID&gt;), and keep this workflow active: links in emails point there.",
        name: 'notice',
        type: 'notice',
        default: '',
      },
    ],
  };

  methods = { credentialTest };

  // The endpoint is n8n's own: there is no third-party service to register it with.
  webhookMethods = {
    default: {
      checkExists: async () => true,
      create: async () => true,
      delete: async () => true,
    },
  };

  async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
    const { kind, token } = this.getParamsData() as { kind?: string; token?: string };
    const res = this.getResponseObject();
    const engine = await engineFor(await this.getCredentials<CadenzaCredentials>('cadenzaApi'));
    const handled = await trackingHandler(engine.runtime)(this.getRequestObject(), res, `/t/${kind ?? ''}/${token ?? ''}`);
    if (!handled) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Not a Cadenza link.');
    }
    return { noWebhookResponse: true };
  }
}
