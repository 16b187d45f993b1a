// The n8n credential carries the settings `cadenza serve` takes as flags: the edition's limits (C3), the
// approved WhatsApp templates (C4) and how long failing deliveries are retried (D6). The engine built
// from it (the one every n8n node of the process shares) enforces them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeEngines, configureCadenza, engineFor } from '../../nodes/n8n/shared/host';
import { CadenzaApi } from '../../credentials/CadenzaApi.credentials';

const dir = mkdtempSync(join(tmpdir(), 'cadenza-cred-'));
configureCadenza({ manualTick: true });
afterAll(async () => {
  await closeEngines();
  rmSync(dir, { recursive: true, force: true });
});

const cadence = (id: string, step: Record<string, unknown> = { channel: 'email', template: { subject: 'Hi', body: 'Hi' } }) => ({
  id, name: id, module: 'Leads', enrollment: { mode: 'manual' }, nodes: [{ id: 's1', type: 'followUp', ...step }], edges: [{ from: 'trigger', to: 's1' }],
});

describe('n8n credential settings', () => {
  it('C3 C4 D6 the credential offers edition, add-ons, approved WhatsApp templates and the retry window', () => {
    const names = new CadenzaApi().properties.map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['edition', 'addOns', 'whatsappTemplates', 'retryHours']));
  });

  it('C3 C4 an engine from a Standard credential refuses the 11th active cadence, and an unapproved WhatsApp template', async () => {
    const engine = await engineFor({ storePath: join(dir, 'std.db'), edition: 'standard', whatsappTemplates: 'welcome_v1, reminder_v2' });
    for (let i = 0; i < 10; i++) await engine.runtime.deploy(cadence(`c${i}`), 'n8n');
    await expect(engine.runtime.deploy(cadence('c10'), 'n8n')).rejects.toMatchObject({ rule: 'C3' });
    const wa = (templateId: string) => cadence(`wa-${templateId}`, { channel: 'whatsapp', templateId });
    await engine.runtime.deactivate('c0', 'n8n');
    await expect(engine.runtime.deploy(wa('promo'), 'n8n')).rejects.toMatchObject({ rule: 'C4' });
    await expect(engine.runtime.deploy(wa('reminder_v2'), 'n8n')).resolves.toMatchObject({ action: 'created' });
  });
});
