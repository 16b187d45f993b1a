// The n8n credential carries the settings `cadenza serve` takes as flags: the edition's limits (C3), the
// approved WhatsApp templates (C4), how long failing deliveries are retried (D6), contact limits (F13)
// and the user directory (F6, F7). The engine built from it (the one every n8n node of the process
// shares) enforces them; a bad one fails the credential test naming the field.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../engine/runtime/clock';
import { cadenzaStoreTest } from '../../nodes/n8n/shared/credential-test';
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
    expect(names).toEqual(expect.arrayContaining(['edition', 'addOns', 'whatsappTemplates', 'retryHours', 'contactLimits', 'users']));
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

  it('F13 F6 contact limits and users from the credential hold a second email to the next day and merge the owner from the directory', async () => {
    const clock = new VirtualClock(Date.parse('2026-03-02T08:00:00Z'));
    configureCadenza({ manualTick: true, clock });
    try {
      const engine = await engineFor({ storePath: join(dir, 'limits.db'), contactLimits: '[{"channel": "email", "max": 1, "days": 1}]', users: '{"u1": {"name": "Ann Lee", "signature": "<b>Ann</b>"}}' });
      const sent: { subject?: string; html?: string }[] = [];
      engine.runtime.onDispatch((a) => void sent.push(a.email!));
      await engine.runtime.deploy({ ...cadence('two'), nodes: [
        { id: 's1', type: 'followUp', channel: 'email', template: { subject: 'Hi {{Owner.name}}', body: '<p>Hi</p>{{{Owner.signature}}}' } },
        { id: 's2', type: 'followUp', channel: 'email', delay: { amount: 1, unit: 'hours' }, template: { subject: 'Again', body: 'Again' } },
      ], edges: [{ from: 'trigger', to: 's1' }, { from: 's1', to: 's2' }] }, 'n8n');
      await engine.runtime.enroll('two', [{ id: 'A', Email: 'a@example.com', Owner: 'u1' }], 'n8n');
      await engine.runtime.runUntil(Date.parse('2026-03-02T20:00:00Z'), clock);
      expect(sent).toMatchObject([{ subject: 'Hi Ann Lee', html: expect.stringContaining('<b>Ann</b>') }]);
      await engine.runtime.runUntil(Date.parse('2026-03-03T12:00:00Z'), clock);
      expect(sent.map((e) => e.subject)).toEqual(['Hi Ann Lee', 'Again']);
    } finally {
      configureCadenza({ manualTick: true, clock: undefined });
    }
  });

  it('F13 F7 D6 a bad setting fails the credential test naming field and rule, and no store is opened', async () => {
    const path = join(dir, 'bad.db');
    const result = await cadenzaStoreTest.call({} as never, { id: 'x', name: 'x', type: 'cadenzaApi', data: { storePath: path, contactLimits: '[{"channel": "task", "max": 1, "days": 1}]', users: '{"u1": "Ann"}', retryHours: -2 } } as never);
    expect(result.status).toBe('Error');
    expect(result.message).toMatch(/^Invalid Cadenza setting: 3 bad engine settings/);
    expect(result.message).toMatch(/D6 retryHours: must be a number of hours above 0/);
    expect(result.message).toMatch(/F13 contactLimits\[0\]\.channel: must be email, call or whatsapp/);
    expect(result.message).toMatch(/F7 users\.u1: must be \{ name\?, email\?, signature\? \}/);
    expect(existsSync(path)).toBe(false);
    expect((await cadenzaStoreTest.call({} as never, { id: 'y', name: 'y', type: 'cadenzaApi', data: { storePath: path, contactLimits: 'three a week' } } as never)).message).toMatch(/F13 contactLimits: is not valid JSON/);
  });

  it('F13 F6 testing edited, unsaved settings never changes the engine serving the saved credential', async () => {
    const saved = { storePath: join(dir, 'live.db'), contactLimits: '[{"max": 1, "days": 1}]', users: '{"u1": {"name": "Ann"}}' };
    const live = await engineFor(saved);
    const edited = { ...saved, contactLimits: '[{"max": 9, "days": 1}]', users: '{"u9": {"name": "Nine"}}' };
    const result = await cadenzaStoreTest.call({} as never, { id: 'z', name: 'z', type: 'cadenzaApi', data: edited } as never);
    expect(result).toMatchObject({ status: 'OK', message: expect.stringMatching(/is ready$/) });
    expect(await engineFor(saved)).toBe(live); // still the one running the cadences, with the saved limits
    expect((await cadenzaStoreTest.call({} as never, { id: 's', name: 's', type: 'cadenzaApi', data: saved } as never)).status).toBe('OK');
    expect(await engineFor(saved)).toBe(live);
  });
});
