// The check behind the editor's pre-deploy problems (admin route cadenza/check): the engine's own
// compilation and validation of a Node-RED flow, plus what only a flow shows. Pure: no runtime needed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { explain } from '../../engine/host/hints';
import { checkNodeRedFlow } from '../../engine/model/formats/node-red-check';
import { compileTrigger } from '../../engine/model/formats/node-red';
import { validateNode } from '../../engine/model/validate';

type FlowNode = Record<string, any>;
const sales = (): FlowNode[] => JSON.parse(readFileSync(join(__dirname, '../../flows/node-red/sales-ready-lead.json'), 'utf8'));
const byNode = (flow: FlowNode[]) => {
  const out: Record<string, string[]> = {};
  for (const p of checkNodeRedFlow(flow as never)) (out[p.node!] ??= []).push(explain(p));
  return out;
};

describe('editor check of a Node-RED flow', () => {
  it('C6 the shipped example has no problem', () => {
    expect(byNode(sales())).toEqual({});
  });

  it('F1 C5 a core delay between trigger and first step is named, with the step\'s After field as the fix; only it and the trigger are flagged', () => {
    const flow = sales();
    flow.find((n) => n.id === 'trig-sales')!.wires = [['wait']];
    flow.push({ id: 'wait', type: 'delay', z: 'tab-sales', name: 'wait 2 days', wires: [['welcome']] });
    const problems = byNode(flow);
    expect(Object.keys(problems).sort()).toEqual(['trig-sales', 'wait']);
    expect(problems.wait[0]).toMatch(/^F1 wires: this delay node sits between "Sales-ready lead" and "Welcome email".*use the step's After field/);
    expect(problems['trig-sales']).toEqual(["C5 nodes: must be a non-empty list with at least one follow-up — Wire the trigger's output straight to a Follow-up Step."]);
  });

  it('C6 a function node between two steps is named too, and a step no trigger reaches says so', () => {
    const flow = sales();
    flow.find((n) => n.id === 'bump')!.wires = [['send-mail'], ['fn']];
    flow.push({ id: 'fn', type: 'function', z: 'tab-sales', name: '', wires: [['call-bump']] });
    flow.push({ id: 'lonely', type: 'cadenza-followup', z: 'tab-sales', name: 'Lonely', channel: 'email', subject: '', body: '', wires: [[], []] });
    const problems = byNode(flow);
    expect(problems.fn[0]).toMatch(/^C6|^F1/);
    expect(problems.fn[0]).toContain('Wire "No response: bump" straight to "Call after the bump"');
    expect(problems.lonely).toEqual([
      'F6 template.subject: an email needs a subject — Fill in the Subject and Body.',
      'C6 wires: no Cadence Trigger reaches this node, so it never runs: wire it from the trigger or from a step of a cadence',
    ]);
    expect(problems['call-bump']).toBeUndefined(); // explained by the function node in front of it
  });

  it('C6 F2 an outcome the step before cannot report is put on the branch', () => {
    const flow = sales();
    flow.find((n) => n.id === 'responded')!.outcomes = ['replied', 'busy'];
    expect(byNode(flow).responded).toEqual(['C6 outcomes: "busy" is not an outcome of a email follow-up (opened, clicked, replied, auto-replied, bounced) — Choose outcomes the step before the branch can report.']);
  });

  it('C6 D4 a branch whose wires no longer match its outcomes (an imported or hand-edited flow) is named, and the flow does not compile: no wire is moved to another outcome in silence', () => {
    const flow = sales();
    flow.find((n) => n.id === 'responded')!.outcomes = ['replied']; // its three wires left as they were
    const problems = byNode(flow);
    expect(problems.responded).toEqual(['C6 wires: the branch has 3 wired outputs but 2 outcomes (replied, timeout): open it, check its outcomes and wire each output again']);
    expect(() => compileTrigger(flow as never, 'trig-sales')).toThrow(/a branch's wires do not match its outcomes/);
  });

  it('C4 F14 a WhatsApp template the engine node does not approve is named before deploy; a step counted from the outcome after a branch is not flagged on its own', () => {
    const flow = sales();
    flow.find((n) => n.type === 'cadenza-config')!.whatsappTemplates = 'welcome_v1';
    Object.assign(flow.find((n) => n.id === 'glad')!, { channel: 'whatsapp', templateId: 'promo_v9', subject: '', body: '' });
    expect(byNode(flow).glad).toEqual([expect.stringMatching(/^C4 templateId: "promo_v9" is not a pre-approved WhatsApp template/)]);
    expect(validateNode({ id: 'x', type: 'followUp', channel: 'task', relativeTo: 'outcome', template: { subject: 'Call', body: '' } })).toEqual([]);
  });
});
