// F13 on both stores: a limit on messages per record across all cadences, set once for the engine and
// overridable per cadence (exempt, or stricter). Over it a follow-up waits for the first day with room,
// inside the send window, never dropped, and the why-log names the limit. The count is exact with
// several workers: the store re-checks each window's sum under its locks.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cadenceJsonSchema } from '../../engine/model/formats/json-schema';
import { triggerSettings } from '../../engine/model/formats/params';
import { PARAMS } from '../../engine/model/formats/schema';
import { validateDefinition } from '../../engine/model/validate';
import type { CadenceDefinition } from '../../engine/model/types';
import { serveConfig } from '../../engine/cli/config';
import { main } from '../../engine/cli/main';
import { Runtime } from '../../engine/runtime/runtime';
import type { Store } from '../../engine/store/store';
import { DAY, HOUR, T0, harness, iso, lead, published, type Harness } from '../helpers/harness';

let h: Harness;
afterEach(() => h?.close());

const ONE_EMAIL_A_DAY = { limits: [{ channel: 'email' as const, max: 1, days: 1 }] };

/** One email at once, in a 09:00–17:00 weekday window. */
const oneEmail = (id: string, over: Partial<CadenceDefinition> = {}): CadenceDefinition => ({
  id, name: `Cadence ${id}`, module: 'Leads', timezone: 'UTC', enrollment: { mode: 'manual' },
  sendWindow: { days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' },
  nodes: [{ id: 'e', type: 'followUp', channel: 'email', template: { subject: `From ${id}`, body: 'Hello' } }],
  edges: [{ from: 'trigger', to: 'e' }],
  ...over,
});

const days = (h: Harness) => h.sent.map((s) => [s.cadenceId, iso(s.at)]);

describe('F13 contact fatigue', () => {
  it('F13 F11 three cadences due the same morning under "1 email per day": one a day, each in the window, none dropped, the why-log names the limit', async () => {
    h = await harness({ fatigue: ONE_EMAIL_A_DAY });
    for (const id of ['a', 'b', 'c']) await published(h, oneEmail(id));
    for (const id of ['a', 'b', 'c']) await h.rt.enroll(id, [lead('P')], 'rep'); // Monday 08:00: all due at 09:00
    await h.advance(2 * HOUR);
    const held = async () => (await Promise.all(['a', 'b', 'c'].map(async (id) => (await h.rt.cadenceReport(id)).followUps[0].heldByFatigue))).reduce((a, b) => a + b, 0);
    expect(await held()).toBe(2); // the report says how many a contact limit holds
    await h.advance(5 * DAY - 2 * HOUR);
    expect(await held()).toBe(0);
    expect(h.sent).toHaveLength(3);
    expect(h.sent.map((s) => iso(s.at))).toEqual(['2026-03-02T09:00:00.000Z', '2026-03-03T09:00:00.000Z', '2026-03-04T09:00:00.000Z']);
    expect(new Set(h.sent.map((s) => s.cadenceId)).size).toBe(3);
    const last = h.sent[2].enrollmentId;
    const why = (await h.rt.why(last)).filter((r) => r.event === 'deferred' && /F13/.test(r.reason));
    expect(why[0]).toMatchObject({ reason: 'contact limit: at most 1 email per day (F13)', data: { until: '2026-03-03T09:00:00.000Z' } });
    expect(why.at(-1)).toMatchObject({ data: { until: '2026-03-04T09:00:00.000Z' } });
    for (const id of ['a', 'b', 'c']) expect(await h.rt.getEnrollment(id, 'P')).toMatchObject({ status: 'completed' });
  });

  it('F13 F11 days are the record\'s local days: six held emails go out one a weekday at 09:00 New York time, across the DST change', async () => {
    h = await harness({ fatigue: ONE_EMAIL_A_DAY });
    const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const id of ids) await published(h, oneEmail(id));
    for (const id of ids) await h.rt.enroll(id, [lead('P', { Time_Zone: 'America/New_York' })], 'rep');
    await h.advance(10 * DAY);
    expect(h.sent.map((s) => iso(s.at))).toEqual([
      '2026-03-02T14:00:00.000Z', '2026-03-03T14:00:00.000Z', '2026-03-04T14:00:00.000Z', '2026-03-05T14:00:00.000Z', '2026-03-06T14:00:00.000Z',
      '2026-03-09T13:00:00.000Z', // Monday 09:00 EDT, after the weekend and the change to summer time
    ]);
  });

  it('F13 "at most 2 emails in 7 days" holds the third until the window has room, skipping the weekend', async () => {
    h = await harness({ fatigue: { limits: [{ channel: 'email', max: 2, days: 7 }] } });
    for (const id of ['a', 'b', 'c']) await published(h, oneEmail(id));
    for (const id of ['a', 'b', 'c']) await h.rt.enroll(id, [lead('P')], 'rep');
    await h.advance(10 * DAY);
    // Two on Monday; the seven days from Monday end on Sunday; the next window opens Monday 09:00.
    expect(h.sent.map((s) => iso(s.at))).toEqual(['2026-03-02T09:00:00.000Z', '2026-03-02T09:00:00.000Z', '2026-03-09T09:00:00.000Z']);
  });

  it('F13 a cadence marked exempt sends anyway (and still counts); a task never counts', async () => {
    h = await harness({ fatigue: ONE_EMAIL_A_DAY });
    await published(h, oneEmail('a'));
    await published(h, oneEmail('welcome', { fatigue: 'exempt' }));
    await published(h, oneEmail('t', { nodes: [{ id: 'e', type: 'followUp', channel: 'task', template: { subject: 'Check', body: '' } }] }));
    for (const id of ['a', 'welcome', 't']) await h.rt.enroll(id, [lead('P')], 'rep');
    await h.advance(3 * HOUR);
    expect(days(h).map(([c]) => c).sort()).toEqual(['a', 't', 'welcome']);
    h.sent.length = 0;
    await published(h, oneEmail('b'));
    await h.rt.enroll('b', [lead('P')], 'rep');
    await h.advance(1 * DAY);
    expect(days(h)).toEqual([['b', '2026-03-03T09:00:00.000Z']]); // the exempt email counted for the day
  });

  it('F13 a cadence\'s own stricter limit applies on top of the engine\'s', async () => {
    h = await harness({ fatigue: { limits: [{ channel: 'email', max: 3, days: 7 }] } });
    await published(h, oneEmail('a'));
    await published(h, oneEmail('strict', { fatigue: { limits: [{ max: 1, days: 2 }] } }));
    await h.rt.enroll('a', [lead('P')], 'rep');
    await h.advance(2 * HOUR); // a: Monday 09:00
    await h.rt.enroll('strict', [lead('P')], 'rep');
    await h.advance(5 * DAY);
    expect(days(h)).toEqual([['a', '2026-03-02T09:00:00.000Z'], ['strict', '2026-03-04T09:00:00.000Z']]);
    const e = h.sent[1].enrollmentId;
    expect((await h.rt.why(e)).find((r) => r.event === 'deferred')).toMatchObject({ reason: 'contact limit: at most 1 message in 2 days (F13)', data: { limit: 'cadence' } });
  });

  it('F13 D2 two workers that both read the last slot as free take it once: the store refuses the second, which waits for the next day', async () => {
    h = await harness();
    for (const id of ['a', 'b']) await published(h, oneEmail(id));
    for (const id of ['a', 'b']) await h.rt.enroll(id, [lead('P')], 'rep');
    // Both workers read the counters before either commits (a barrier after the read), as two processes can.
    let waiting: (() => void) | null = null;
    const barrier = () => new Promise<void>((go) => {
      if (waiting) return (waiting(), (waiting = null), go());
      waiting = go;
      setTimeout(() => (waiting === go ? ((waiting = null), go()) : undefined), 2000);
    });
    let reads = 0;
    const racing = (store: Store): Store => new Proxy(store, {
      get(t, p) {
        const v = Reflect.get(t, p) as unknown;
        if (p === 'counters') return async (...a: never[]) => { const r = await (v as (...x: never[]) => Promise<unknown>).apply(t, a); if (reads++ < 2) await barrier(); return r; };
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    const workers = await Promise.all([0, 1].map(async () => {
      const rt = await new Runtime({ store: racing(h.openStore()), clock: h.clock, secret: 'test-secret', fatigue: ONE_EMAIL_A_DAY, batchSize: 1 }).init();
      rt.onDispatch((a) => void h.sent.push({ ...a, at: h.clock.now() }));
      return rt;
    }));
    h.clock.set(T0 + HOUR);
    await Promise.all(workers.map((w) => w.tick()));
    expect(reads).toBeGreaterThanOrEqual(2);
    expect(h.sent).toHaveLength(1);
    h.clock.set(T0 + DAY + HOUR);
    for (let pass = 0; pass < 2; pass++) await Promise.all(workers.map((w) => w.tick()));
    expect(h.sent.map((s) => iso(s.at))).toEqual(['2026-03-02T09:00:00.000Z', '2026-03-03T09:00:00.000Z']);
    for (const w of workers) await w.store.close();
  });

  it('F13 D2 two workers over several days: at most one email a day per contact, none dropped, none twice', async () => {
    h = await harness({ fatigue: ONE_EMAIL_A_DAY, batchSize: 8 });
    const ids = ['a', 'b', 'c', 'd'];
    for (const id of ids) await published(h, oneEmail(id));
    for (const id of ids) await h.rt.enroll(id, [lead('P'), lead('Q')], 'rep');
    const other = await new Runtime({ store: h.openStore(), clock: h.clock, secret: 'test-secret', fatigue: ONE_EMAIL_A_DAY, batchSize: 8 }).init();
    other.onDispatch((a) => void h.sent.push({ ...a, at: h.clock.now() }));
    for (let day = 0; day < 6; day++) {
      h.clock.set(T0 + day * DAY + HOUR);
      for (let pass = 0; pass < 3; pass++) await Promise.all([h.rt.tick(), other.tick()]);
    }
    const perDay = new Map<string, number>();
    for (const s of h.sent) perDay.set(`${s.recordId} ${iso(s.at).slice(0, 10)}`, (perDay.get(`${s.recordId} ${iso(s.at).slice(0, 10)}`) ?? 0) + 1);
    expect([...perDay.values()].every((n) => n === 1)).toBe(true);
    expect(h.sent).toHaveLength(8); // none dropped, none twice
    expect(new Set(h.sent.map((s) => s.key)).size).toBe(8);
    await other.store.close();
  });

  it('F13 F14 S1 the example: simulate shows the guide held to the next morning by the cadence\'s limit, and the call one business day after the open', async () => {
    const out: string[] = [];
    expect(await main(['simulate', join(__dirname, '../../flows/cadences/demo-request.json'), '--json'], { out: (x) => out.push(x), err: (x) => out.push(x) })).toBe(0);
    const r = JSON.parse(out[0]);
    expect(r.timeline.filter((t: { record: string }) => t.record === 'L1').map((t: { followUp: string; at: string }) => `${t.followUp} ${t.at.slice(0, 16)}`))
      .toEqual(['welcome 2026-03-02T09:00', 'guide 2026-03-03T09:00', 'call 2026-03-03T11:00']);
    expect(r.events.map((e: { what: string }) => e.what)).toContain('held: contact limit: at most 1 email per day (F13) until 2026-03-03 09:00');
  });

  it('F13 the editors\' "exempt from contact limits" box (one parameter schema) makes the cadence exempt; the JSON Schema knows both forms', () => {
    expect(PARAMS.trigger.find((p) => p.name === 'fatigueExempt')).toMatchObject({ type: 'boolean', default: false });
    expect(triggerSettings({ module: 'Leads', fatigueExempt: true }).fatigue).toBe('exempt');
    expect(triggerSettings({ module: 'Leads', fatigueExempt: false }).fatigue).toBeUndefined();
    expect(cadenceJsonSchema().properties.fatigue.oneOf).toHaveLength(2);
  });

  it('F13 D4 bad limits are refused naming the field and the rule, in a definition and in the engine settings', async () => {
    expect(validateDefinition(oneEmail('x', { fatigue: { limits: [{ channel: 'task', max: 0, days: 1 }] } as never }))).toEqual([
      expect.objectContaining({ rule: 'F13', field: 'fatigue.limits[0].channel' }),
      expect.objectContaining({ rule: 'F13', field: 'fatigue.limits[0].max', message: 'must be a positive integer' }),
    ]);
    expect(validateDefinition(oneEmail('x', { fatigue: 'sometimes' as never }))).toEqual([expect.objectContaining({ rule: 'F13', field: 'fatigue' })]);
    expect(validateDefinition(oneEmail('x', { fatigue: { limits: [{ max: 1, days: 365 }] } }))).toEqual([expect.objectContaining({ rule: 'F13', field: 'fatigue.limits[0].days' })]);
    h = await harness();
    const before = await h.snapshot();
    await expect(h.rt.createCadence(oneEmail('x', { fatigue: { limits: [{ max: -1, days: 1 }] } }), 'admin')).rejects.toThrow(/F13 fatigue.limits\[0\].max/);
    expect(await h.snapshot()).toEqual(before);
    expect(() => new Runtime({ store: h.store, fatigue: { limits: [{ channel: 'email', max: 2, days: 0 }] } })).toThrow(/F13 fatigue.limits\[0\].days/);
    const file = join(h.dir, 'serve.json');
    writeFileSync(file, JSON.stringify({ fatigue: { limits: [{ channel: 'sms', max: 1, days: 1 }] } }));
    expect(() => serveConfig({ config: file })).toThrow(/F13 fatigue.limits\[0\].channel/);
    writeFileSync(file, JSON.stringify({ fatigue: ONE_EMAIL_A_DAY }));
    expect(serveConfig({ config: file }).fatigue).toEqual(ONE_EMAIL_A_DAY);
  });
});
