import { describe, expect, it } from 'vitest';
import { validateDefinition, assertDefinition } from '../../engine/model/validate';
import { classifyReply } from '../../engine/model/outcomes';
import { CadenzaError } from '../../engine/model/errors';
import { emailCadence } from '../helpers/harness';
import type { CadenceDefinition } from '../../engine/model/types';

const rules = (def: unknown) => validateDefinition(def).map((p) => `${p.rule}:${p.node ?? ''}:${p.field}`);

describe('definition validation', () => {
  it('C4 call steps are refused in custom modules, allowed in Leads', () => {
    const call = { id: 'c', type: 'followUp', channel: 'call' };
    const def = (module: string) => ({ ...emailCadence(), module, nodes: [call], edges: [{ from: 'trigger', to: 'c' }] });
    expect(rules(def('Custom_Projects'))).toContain('C4:c:channel');
    expect(rules(def('Leads'))).toEqual([]);
  });

  it('C4 WhatsApp steps only in Leads and Contacts, only with a pre-approved template', () => {
    const wa = (templateId?: string) => ({ id: 'w', type: 'followUp', channel: 'whatsapp', templateId });
    const def = (module: string, templateId?: string) => ({ ...emailCadence(), module, nodes: [wa(templateId)], edges: [{ from: 'trigger', to: 'w' }] });
    expect(rules(def('Deals', 'welcome_v1'))).toContain('C4:w:channel');
    expect(rules(def('Contacts'))).toContain('C4:w:templateId');
    expect(validateDefinition(def('Contacts', 'custom_text'), { whatsappTemplates: ['welcome_v1'] }).map((p) => p.rule)).toEqual(['C4']);
    expect(validateDefinition(def('Contacts', 'welcome_v1'), { whatsappTemplates: ['welcome_v1'] })).toEqual([]);
  });

  it('C6 one outcome leads to at most one branch per follow-up', () => {
    const def: CadenceDefinition = {
      ...emailCadence(),
      nodes: [
        ...emailCadence().nodes,
        { id: 'b', type: 'outcomeBranch', outcomes: ['replied', 'replied'] },
      ],
      edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 'b' }, { from: 'b', port: 'replied', to: 'e2' }, { from: 'b', port: 'replied', to: 'e2' }],
    };
    const found = validateDefinition(def);
    expect(found.filter((p) => p.rule === 'C6' && p.node === 'b').length).toBeGreaterThanOrEqual(2);
    expect(found.every((p) => p.message.length > 0)).toBe(true);
  });

  it('C6 refuses outcomes a channel cannot have, cycles, unreachable nodes and dangling edges, naming each node', () => {
    const def = {
      ...emailCadence(),
      nodes: [
        { id: 't', type: 'followUp', channel: 'task' },
        { id: 'b', type: 'outcomeBranch', outcomes: ['opened'] },
        { id: 'x', type: 'followUp', channel: 'task' },
        { id: 'orphan', type: 'followUp', channel: 'task' },
      ],
      edges: [{ from: 'trigger', to: 't' }, { from: 't', to: 'b' }, { from: 'x', to: 't' }, { from: 'b', port: 'opened', to: 'x' }, { from: 'nope', to: 'x' }],
    };
    const r = rules(def);
    expect(r).toContain('C6:b:outcomes');
    expect(r.some((x) => x.startsWith('C6:') && x.endsWith(':edges'))).toBe(true); // the cycle
    expect(r).toContain('C6:orphan:edges');
    expect(r).toContain('C6::edges[4].from');
  });

  it('C5 places no limit on the number of follow-ups', () => {
    const n = 300;
    const nodes = Array.from({ length: n }, (_, i) => ({ id: `s${i}`, type: 'followUp' as const, channel: 'task' as const, delay: { amount: 1, unit: 'days' as const } }));
    const edges = [{ from: 'trigger', to: 's0' }, ...nodes.slice(1).map((node, i) => ({ from: `s${i}`, to: node.id }))];
    expect(validateDefinition({ ...emailCadence(), nodes, edges })).toEqual([]);
  });

  it('D4 a malformed definition is refused with every problem named by field and rule', () => {
    for (const bad of [null, 42, 'x', [], {}]) expect(validateDefinition(bad).length).toBeGreaterThan(0);
    const found = validateDefinition({ id: '', name: 'x', module: 'Leads', enrollment: { mode: 'view', view: 'Lead_Status = = 1' }, timezone: 'Mars/Olympus', nodes: [], edges: [] });
    expect(found.map((p) => `${p.rule} ${p.field}`)).toEqual(expect.arrayContaining(['D4 id', 'E2 enrollment.view', 'F11 timezone', 'C5 nodes']));
    expect(() => assertDefinition({ id: 'x' })).toThrow(CadenzaError);
    try {
      assertDefinition({ ...emailCadence(), sendWindow: { start: '18:00', end: '09:00' } });
    } catch (e) {
      expect((e as CadenzaError).problems[0]).toMatchObject({ rule: 'F11', field: 'sendWindow' });
      expect((e as Error).message).toContain('start must be before end');
    }
  });

  it('D4 F11 F5 a misspelt key is refused, naming it and what it resembles: "sendwindow", "Delay", "relativeto", "timout", "Start" were read as absent and the cadence ran without them', () => {
    const def = {
      ...emailCadence(),
      sendwindow: { days: [1, 2, 3, 4, 5], start: '09:00', end: '10:00' },
      sendWindow: { Start: '09:00', end: '10:00' },
      nodes: [
        { id: 'e1', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: 'x', bdy: 'y' }, Delay: { amount: 3, unit: 'days' }, relativeto: 'previous' },
        { id: 'b', type: 'outcomeBranch', outcomes: ['opened'], timout: { amount: 3, unit: 'days' } },
        { id: 'e2', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: 'x' }, delay: { amount: 1, units: 'days', unit: 'days' } },
      ],
      edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 'b' }, { from: 'b', port: 'opened', to: 'e2', lable: 'x' }],
    };
    const found = validateDefinition(def).filter((p) => p.rule === 'D4').map((p) => `${p.node ?? ''}:${p.field}:${/did you mean "([^"]+)"/.exec(p.message)?.[1] ?? ''}`);
    expect(found.sort()).toEqual([
      ':edges[2].lable:', ':sendWindow.Start:start', ':sendwindow:sendWindow', 'b:timout:timeout', 'e1:Delay:delay', 'e1:relativeto:relativeTo', 'e1:template.bdy:body', 'e2:delay.units:unit',
    ].sort());
    expect(validateDefinition(def)[0].message).toMatch(/is not a field the engine reads .*known here are/);
    // The definition of the README and the examples keep passing: every key they use is known, and an editor's $schema.
    expect(validateDefinition({ $schema: './schema/cadence.schema.json', ...emailCadence() })).toEqual([]);
  });

  it('F11 a holiday must be a date that exists', () => {
    expect(rules({ ...emailCadence(), sendWindow: { holidays: ['2026-02-30'] } })).toEqual(['F11::sendWindow.holidays']);
    expect(rules({ ...emailCadence(), sendWindow: { holidays: ['2026-02-28'] } })).toEqual([]);
  });

  it('U3 an invalid JSONata exit criterion is refused at publish time', () => {
    expect(rules({ ...emailCadence(), unenroll: { criteria: 'Stage in [' } })).toEqual(['U3::unenroll.criteria']);
    expect(rules({ ...emailCadence(), nodes: [...emailCadence().nodes, { id: 'k', type: 'unenrollCheck', criteria: '(((' }], edges: [...emailCadence().edges, { from: 'e2', to: 'k' }] })).toEqual(['U3:k:criteria']);
  });
});

describe('reply classification', () => {
  it('U10 automatic replies are auto-replied, never replied', () => {
    expect(classifyReply({ subject: 'Re: hello', headers: { From: 'a@b.c' } })).toBe('replied');
    expect(classifyReply({ subject: 'Re: hello', headers: { 'Auto-Submitted': 'auto-replied' } })).toBe('auto-replied');
    expect(classifyReply({ subject: 'Re: hello', headers: { 'auto-submitted': 'no' } })).toBe('replied');
    expect(classifyReply({ subject: 'Re: hello', headers: { 'X-Autoreply': 'yes' } })).toBe('auto-replied');
    expect(classifyReply({ subject: 'Re: hello', headers: { Precedence: 'auto_reply' } })).toBe('auto-replied');
    for (const subject of ['Out of Office: back Monday', 'Automatic reply: Your message', 'Auto-Reply: away', 'Abwesenheitsnotiz'])
      expect(classifyReply({ subject })).toBe('auto-replied');
  });
});
