// Set-based record paths (upsertRecords, enroll of many) must decide exactly what one-by-one calls
// decide: same answers, same enrollments, same follow-ups. Random batches with repeated ids, bad
// records, unknown ids and records already enrolled, run both ways on two fresh stores.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { DAY, emailCadence, harness, lead, published, type Harness } from '../helpers/harness';
import type { UpsertAnswer } from '../../engine/runtime/runtime';

const opened: Harness[] = [];
afterEach(async () => {
  for (const h of opened.splice(0)) await h.close();
});

const item = fc.oneof(
  { weight: 8, arbitrary: fc.record({ id: fc.constantFrom('a', 'b', 'c', 'd', 'e'), Lead_Status: fc.constantFrom('Hot', 'Cold'), Do_Not_Call: fc.boolean() }).map((r) => lead(r.id, r)) },
  { weight: 1, arbitrary: fc.constant({ First_Name: 'no id' }) },
  { weight: 1, arbitrary: fc.constantFrom('a', 'known', 'ghost') },
);

async function world(): Promise<Harness> {
  const h = await harness();
  opened.push(h);
  await published(h, emailCadence({ id: 'hot', enrollment: { mode: 'view', view: 'Lead_Status = "Hot"' }, unenroll: { criteria: 'Do_Not_Call = true' } }));
  await published(h, emailCadence({ id: 'cold', enrollment: { mode: 'view', view: 'Lead_Status = "Cold"' } }));
  await published(h, emailCadence({ id: 'manual' }));
  await published(h, emailCadence({ id: 'paced', enrollment: { mode: 'view', view: 'Lead_Status = "Hot"', cap: { perHour: 2, perDay: 3 } }, unenroll: { criteria: 'Do_Not_Call = true' } }));
  await h.rt.upsertRecord('Leads', lead('known', { Lead_Status: 'Hot' }));
  return h;
}

const plain = (a: UpsertAnswer) => ('error' in a ? { recordId: a.recordId, error: a.error.message, rule: a.error.rule } : a);

/** What a store ends up holding, as the runtime reports it. */
async function outcome(h: Harness) {
  await h.advance(3 * DAY);
  const ids = ['a', 'b', 'c', 'd', 'e', 'known'];
  const enrollments = [];
  for (const c of ['hot', 'cold', 'manual', 'paced']) for (const id of ids) {
    const e = await h.rt.getEnrollment(c, id);
    enrollments.push(e && { c, id, status: e.status, reason: e.reason, position: e.position, startedAt: e.startedAt });
  }
  return { enrollments, sent: h.sent.map((a) => `${a.at}:${a.idempotencyKey}:${a.email?.subject}`).sort() };
}

describe('batched record paths', () => {
  it('E1 E2 E3 E6 E9 U2 a batch of records answers and stores exactly what one-by-one calls do', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(item, { maxLength: 10 }), fc.array(item, { maxLength: 10 }), async (updates, manual) => {
        const batch = await world();
        const single = await world();
        const records = updates.filter((u) => typeof u !== 'string');
        const batchUpserts = (await batch.rt.upsertRecords('Leads', records)).map(plain);
        const singleUpserts = [];
        for (const r of records) {
          try {
            singleUpserts.push({ recordId: (r as { id: string }).id, enrollments: await single.rt.upsertRecord('Leads', r) });
          } catch (e) {
            singleUpserts.push({ recordId: '(missing id)', error: (e as Error).message, rule: (e as { rule?: string }).rule });
          }
        }
        expect(batchUpserts).toEqual(singleUpserts);
        const batchEnroll = await batch.rt.enroll('manual', manual, 'rep');
        const singleEnroll = [];
        for (const r of manual) singleEnroll.push(...(await single.rt.enroll('manual', [r], 'rep')));
        expect(batchEnroll).toEqual(singleEnroll);
        expect(await outcome(batch)).toEqual(await outcome(single));
        await batch.close();
        await single.close();
        opened.length = 0;
      }),
      { numRuns: 12, seed: 4242 },
    );
  });

  it('D4 a bad record in a batch is refused by name; the others are saved and enrolled', async () => {
    const h = await world();
    const answers = await h.rt.upsertRecords('Leads', [lead('a', { Lead_Status: 'Hot' }), { First_Name: 'no id' }, lead('b', { Lead_Status: 'Cold' })]);
    expect(answers[1]).toMatchObject({ recordId: '(missing id)', error: expect.objectContaining({ rule: 'D4', message: expect.stringMatching(/record.id is required/) }) });
    expect(answers[0]).toEqual({ recordId: 'a', enrollments: [expect.objectContaining({ status: 'enrolled', enrollmentId: 'hot:a' }), expect.objectContaining({ status: 'enrolled', enrollmentId: 'paced:a' })] });
    expect(answers[2]).toEqual({ recordId: 'b', enrollments: [expect.objectContaining({ status: 'enrolled', enrollmentId: 'cold:b' })] });
    await expect(h.rt.upsertRecords('Leads', 'nope' as never)).rejects.toMatchObject({ rule: 'D4' });
  });
});
