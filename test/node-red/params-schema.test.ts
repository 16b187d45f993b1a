// One parameter schema (engine/model/formats/schema.ts) for both editors and the JSON Schema: each
// consumer reads its options and bounds from there, so a bound changed there changes everywhere.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { cadenceJsonSchema } from '../../engine/model/formats/json-schema';
import { CHANNELS, DELAY_MAX, DELAY_UNITS, PARAMS, paramProblem } from '../../engine/model/formats/schema';
import { ALL_OUTCOMES } from '../../engine/model/outcomes';
import { validateDefinition } from '../../engine/model/validate';
import { branchFields, followUpFields } from '../../nodes/n8n/shared/fields';

const root = join(__dirname, '../..');
const param = (kind: keyof typeof PARAMS, name: string) => PARAMS[kind].find((p) => p.name === name)!;
/** What the Node-RED editor runs: the schema and check the build embedded into the editor HTML (dist). */
function nodeRedParams(): { schema: { params: typeof PARAMS }; problem: typeof paramProblem } {
  const html = readFileSync(join(root, 'dist/nodes/node-red/cadenza-config.html'), 'utf8');
  const m = /window\.CadenzaParams = window\.CadenzaParams \|\| (\{ schema: [\s\S]*?\n\});?\n/.exec(html) ?? /window\.CadenzaParams = window\.CadenzaParams \|\| ([\s\S]*?);\n  window\.CadenzaEditor/.exec(html);
  return runInNewContext(`(${m![1]})`);
}
const def = (amount: number) => ({ id: 'c', name: 'c', module: 'Leads', enrollment: { mode: 'manual' }, nodes: [{ id: 's', type: 'followUp', channel: 'task', delay: { amount, unit: 'days' } }], edges: [{ from: 'trigger', to: 's' }] });

describe('one parameter schema', () => {
  it('D4 the shipped JSON Schema is the one the parameter schema builds', () => {
    expect(JSON.parse(readFileSync(join(root, 'schema/cadence.schema.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(cadenceJsonSchema())));
  });

  it('F1 D4 the delay bound is one number: engine validation, JSON Schema, Node-RED editor and n8n all use it', () => {
    expect(validateDefinition(def(DELAY_MAX))).toEqual([]);
    expect(validateDefinition(def(DELAY_MAX + 1))).toEqual([expect.objectContaining({ rule: 'F1', field: 'delay', message: `must be {amount: 0..${DELAY_MAX}, unit}` })]);
    expect(cadenceJsonSchema().$defs.delay.properties.amount.maximum).toBe(DELAY_MAX);
    const nr = nodeRedParams();
    const nrDelay = nr.schema.params.followUp.find((p) => p.name === 'delay')!;
    expect(nrDelay.max).toBe(DELAY_MAX);
    expect(nr.problem(nrDelay, DELAY_MAX + 1)).toBe(`must be at most ${DELAY_MAX}`);
    expect(nr.problem(nrDelay, '')).toBeUndefined(); // empty optional: never red
    for (const name of ['delay', 'dueIn']) expect(followUpFields.find((f) => f.name === name)!.typeOptions).toMatchObject({ minValue: 0, maxValue: DELAY_MAX });
    expect(branchFields.find((f) => f.name === 'timeout')!.typeOptions).toMatchObject({ maxValue: DELAY_MAX });
  });

  it('C4 F2 channels, units and outcomes: the same lists in both editors and the JSON Schema', () => {
    const options = (fields: typeof followUpFields, name: string) => (fields.find((f) => f.name === name)!.options as { value: string }[]).map((o) => o.value);
    expect(options(followUpFields, 'channel')).toEqual([...CHANNELS]);
    expect(options(followUpFields, 'delayUnit')).toEqual([...DELAY_UNITS]);
    expect(options(branchFields, 'outcomes')).toEqual([...ALL_OUTCOMES]);
    const nr = nodeRedParams().schema.params;
    expect(nr.followUp.find((p) => p.name === 'channel')!.options).toEqual([...CHANNELS]);
    expect(nr.branch.find((p) => p.name === 'outcomes')!.options).toEqual([...ALL_OUTCOMES]);
    const json = cadenceJsonSchema();
    expect(json.$defs.node.oneOf[0].properties.channel).toEqual({ enum: CHANNELS });
    expect(json.$defs.outcome.enum).toEqual(ALL_OUTCOMES);
  });

  it('D4 a field check names the bound it breaks; a schema change is seen by the check at once', () => {
    const cap = { ...param('trigger', 'capPerHour') };
    expect(paramProblem(cap, '0')).toBe('must be at least 1');
    expect(paramProblem(cap, '2.5')).toBe('must be an integer');
    expect(paramProblem(param('branch', 'outcomes'), ['replied', 'replied'])).toBe('lists a value twice');
    expect(paramProblem(param('followUp', 'sender'), 'not an address')).toMatch(/does not have the expected form/);
    cap.min = 5; // one place
    expect(paramProblem(cap, '3')).toBe('must be at least 5');
  });
});
