// S1: the simulator scripts a real week in one timeline format — arrivals, changes, outcomes and
// replies, re-enrollment, publish, (de)activation — each at an instant or after an explicit anchor.
// The production runtime runs it on a virtual clock; these tests read what it reports.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../engine/cli/main';
import { CadenzaError } from '../../engine/model/errors';
import { formatSimulation, simulate, type SimulationInput } from '../../engine/simulate/simulate';

const fixture = join(__dirname, '../fixtures/simulate-week.json');
const week = (): SimulationInput => {
  const { sample, ...definition } = JSON.parse(readFileSync(fixture, 'utf8'));
  return { definition, ...sample };
};
const refusal = async (input: SimulationInput) => {
  try {
    await simulate(input);
  } catch (e) {
    expect(e).toBeInstanceOf(CadenzaError);
    return e as CadenzaError;
  }
  throw new Error('the simulation was not refused');
};
const cli = async (args: string[]) => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
};

describe('simulator timeline', () => {
  it('S1 a lead arriving mid-week, a reply counted from its email, an out-of-office, a change counted from enrollment', async () => {
    const r = await simulate(week());
    const sends = (id: string) => r.timeline.filter((t) => t.record === id).map((t) => `${t.at.slice(0, 16)} ${t.followUp} ${t.subject}`);
    const events = (id: string) => r.events.filter((e) => e.record === id).map((e) => `${e.at.slice(0, 16)} ${e.what}`);
    // L2 does not exist at the start: it arrives on Wednesday and enrolls then (E2).
    expect(sends('L2')[0]).toBe('2026-03-04T10:00 welcome Hi Wed');
    // Its out-of-office comes 3h after its own welcome email, and is shown as such (U10).
    expect(events('L2')).toEqual(['2026-03-04T10:00 arrives, enrolled', '2026-03-04T13:00 auto-reply (out-of-office) to welcome', '2026-03-05T10:00 changed {"Phone":"+1 555"}']);
    // L1's reply 1h after its welcome stops it (U1); the resume the next morning starts bump's delay then (R1).
    expect(events('L1')).toEqual(['2026-03-02T10:00 replied on welcome', '2026-03-03T09:00 re-enrolled (resume)']);
    expect(sends('L1')).toEqual(['2026-03-02T09:00 welcome Hi Ada', '2026-03-05T09:00 bump Re: Hi']);
  });

  it('S1 V1 V3 deactivation halts what was scheduled, reactivation resumes nothing halted, a published version serves later arrivals', async () => {
    const r = await simulate(week());
    const cadence = r.events.filter((e) => e.record === '(cadence)').map((e) => `${e.at.slice(0, 16)} ${e.what}`);
    expect(cadence).toEqual(['2026-03-05T12:00 cadence deactivated', '2026-03-06T12:00 cadence activated: 0 enrolled', '2026-03-09T09:00 published version 2: 0 stopped, 0 enrolled']);
    expect(r.timeline.filter((t) => t.at >= '2026-03-05T12:00' && t.at < '2026-03-06T12:00')).toEqual([]);
    expect(r.endings.find((e) => e.record === 'L2')).toMatchObject({ status: 'stopped', reason: expect.stringMatching(/V3/) });
    expect(r.timeline.filter((t) => t.record === 'L3').map((t) => t.subject)).toEqual(['Hello Mon (v2)', 'Re: Hi']);
    // An outcome for an enrollment that already ended is recorded and changes nothing (D3).
    expect(r.events.find((e) => e.record === 'L3' && e.what.startsWith('opened'))?.what).toMatch(/D3/);
    expect(r).toEqual(await simulate(week())); // same inputs, same timeline
  });

  it('S1 D4 an unknown record, a missing or unknown anchor and an instant before the start are refused, naming the item and field', async () => {
    const input = week();
    input.timeline = [
      { after: '2d', from: 'start', do: 'change', record: 'L9', set: { Lead_Status: 'Junk' } },
      { after: '2d', do: 'converted', record: 'L1' },
      { after: '2d', from: 'wellcome', do: 'outcome', record: 'L1', followUp: 'welcome', outcome: 'opened' },
      { at: '2026-03-01T00:00:00Z', do: 'deactivate' },
      { at: 'tomorrow', after: '1d', from: 'start', do: 'activate' },
      { after: '1d', from: 'start', do: 'reenroll', record: 'L1', mode: 'again' as 'resume' },
    ];
    const e = await refusal(input);
    expect(e.rule).toBe('S1');
    const fields = e.problems.map((p) => p.field);
    expect(fields).toEqual(['timeline[0].record', 'timeline[1].from', 'timeline[2].from', 'timeline[3].at', 'timeline[4].after', 'timeline[4].at', 'timeline[4].from', 'timeline[5].mode']);
    expect(e.message).toMatch(/record "L9" is unknown: it is not in the sample records and never arrives/);
    expect(e.message).toMatch(/"wellcome" is not an anchor: use "start", "enrollment" or a follow-up id \(welcome, bump\)/);
  });

  it('S1 a change to a record that has not arrived yet stops the run with the reason, instead of being ignored', async () => {
    const input = week();
    input.timeline = [
      { at: '2026-03-03T09:00:00Z', do: 'change', record: 'L2', set: { Phone: '1' } },
      { at: '2026-03-04T09:00:00Z', do: 'arrive', record: { id: 'L2', Email: 'l2@x.example', Lead_Status: 'New' } },
    ];
    await expect(simulate(input)).rejects.toThrow('timeline[0].record: record "L2" has not arrived by 2026-03-03T09:00:00.000Z');
  });

  it('S1 items whose moment never comes are listed, not dropped', async () => {
    const input = week();
    input.until = '1d';
    const r = await simulate(input);
    expect(r.notReached.map((x) => `${x.item} ${x.reason}`)).toContain('0 due 2026-03-04T10:00:00.000Z, after the end of the simulation');
    expect(r.notReached.map((x) => `${x.item} ${x.reason}`)).toContain('9 bump never ran for L3');
  });

  it('S1 D6 F9 a step that cannot run shows as failed; after the address is fixed, retry runs just that step under the same key', async () => {
    const definition = {
      id: 'r', name: 'r', module: 'Leads', enrollment: { mode: 'manual' as const },
      nodes: [{ id: 'welcome', type: 'followUp' as const, channel: 'email' as const, template: { subject: 'Hi', body: 'Hi' } }],
      edges: [{ from: 'trigger', to: 'welcome' }],
    };
    const r = await simulate({
      definition, records: [{ id: 'L1', Email: 'not-an-address' }],
      timeline: [
        { after: '1h', from: 'start', do: 'change', record: 'L1', set: { Email: 'l1@x.example' } },
        { after: '2h', from: 'start', do: 'retry', record: 'L1' },
      ],
    });
    expect(r.events.map((e) => `${e.at.slice(11, 16)} ${e.what}`)).toEqual([
      '09:00 failed: no valid email address for "welcome" (F9)', '10:00 changed {"Email":"l1@x.example"}', '11:00 retried the failed step (same key)',
    ]);
    expect(r.timeline.map((t) => `${t.at.slice(11, 16)} ${t.followUp} ${t.to}`)).toEqual(['11:00 welcome l1@x.example']);
    expect(r.endings[0]).toMatchObject({ status: 'completed' });
  });

  it('S1 --json carries what the table prints, and the table columns line up', async () => {
    const text = await cli(['simulate', fixture]);
    const json = await cli(['simulate', fixture, '--json']);
    expect(text.code).toBe(0);
    expect(json.code).toBe(0);
    expect(formatSimulation(JSON.parse(json.out))).toBe(text.out);
    const rows = text.out.split('\n').filter((l) => /^ {2}2026-/.test(l));
    expect(rows.length).toBe(15);
    const header = text.out.split('\n').find((l) => l.includes('when (UTC)'))!;
    for (const col of ['record', 'channel', 'follow-up / event']) {
      const at = header.indexOf(col);
      for (const row of rows) expect(row[at - 1], `${col} in ${row}`).toBe(' ');
      for (const row of rows) expect(row[at], `${col} in ${row}`).not.toBe(' ');
    }
  });

  it('S1 D4 the CLI prints each timeline problem with its rule and exits 1', async () => {
    const r = await cli(['simulate', fixture, '--timeline', join(__dirname, '../fixtures/simulate-bad-timeline.json')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/the timeline has 1 problem\n {2}- S1 timeline\[0\]\.record: record "nobody" is unknown/);
  });
});
