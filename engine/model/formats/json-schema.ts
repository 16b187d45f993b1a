// The JSON Schema of a cadence definition, built from the parameter schema's enums, patterns and
// bounds. `npm run build` writes it to schema/cadence.schema.json (shipped with the package); a test
// checks that the file is what this returns, so the two cannot drift.
import { ALL_OUTCOMES } from '../outcomes';
import { CHANNELS, DELAY_MAX, DELAY_UNITS, ENROLLMENT_MODES, PATTERNS, RELATIVE_TO } from './schema';

const closed = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'object', ...extra, properties, additionalProperties: false });
const count = (description?: string) => ({ type: 'integer', minimum: 1, ...(description ? { description } : {}) });

export function cadenceJsonSchema() {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://cadenza.dev/schema/cadence.schema.json',
    title: 'Cadenza cadence definition',
    description: 'Structural shape of a cadence. Rules that span fields (C4, C6, F2, reachability, JSONata syntax) are checked by `cadenza validate`.',
    type: 'object',
    required: ['id', 'name', 'module', 'enrollment', 'nodes', 'edges'],
    additionalProperties: false,
    properties: {
      $schema: { type: 'string', description: 'this schema, for editors that validate as you type' },
      id: { type: 'string', pattern: PATTERNS.id },
      name: { type: 'string', minLength: 1 },
      module: { type: 'string', pattern: PATTERNS.module, description: 'C1: exactly one module' },
      timezone: { type: 'string', description: 'IANA zone (F11)' },
      enrollment: {
        type: 'object',
        required: ['mode'],
        additionalProperties: false,
        properties: {
          mode: { enum: ENROLLMENT_MODES },
          view: { type: 'string', description: 'JSONata view (E2)' },
          cap: closed({ perHour: count(), perDay: count() }),
        },
      },
      sendWindow: closed({
        days: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 7 }, minItems: 1 },
        start: { type: 'string', pattern: PATTERNS.hhmm },
        end: { type: 'string', pattern: PATTERNS.hhmm },
        holidays: { type: 'array', items: { type: 'string', pattern: PATTERNS.date } },
      }),
      senderDailyCap: count('F12'),
      fatigue: {
        description: 'F13 contact limits: "exempt" ignores the engine\'s; limits apply on top of them',
        oneOf: [
          { const: 'exempt' },
          closed({
            limits: { type: 'array', items: closed({ channel: { enum: CHANNELS.filter((c) => c !== 'task') }, max: count(), days: { type: 'integer', minimum: 1, maximum: 90 } }, { required: ['max', 'days'] }) },
          }, { required: ['limits'] }),
        ],
      },
      unenroll: closed({
        onLeaveView: { type: 'boolean' },
        criteria: { type: 'string' },
        onDate: { type: 'string' },
        outcomes: { type: 'array', items: { $ref: '#/$defs/outcome' } },
        companyReply: { type: 'boolean' },
      }),
      nodes: { type: 'array', minItems: 1, items: { $ref: '#/$defs/node' } },
      edges: { type: 'array', items: closed({ from: { type: 'string' }, port: { type: 'string' }, to: { type: 'string' } }, { required: ['from', 'to'] }) },
      sample: { type: 'object', description: 'Records, a timeline ({at | after + from, do, record, …}; older: outcomes and changes), start and until for `cadenza simulate` (ignored by the engine)' },
    },
    $defs: {
      delay: closed({ amount: { type: 'number', minimum: 0, maximum: DELAY_MAX }, unit: { enum: DELAY_UNITS } }, { required: ['amount', 'unit'] }),
      outcome: { enum: ALL_OUTCOMES },
      node: {
        oneOf: [
          {
            type: 'object',
            required: ['id', 'type', 'channel'], additionalProperties: false,
            properties: {
              id: { type: 'string' }, type: { const: 'followUp' }, name: { type: 'string' },
              channel: { enum: CHANNELS },
              delay: { $ref: '#/$defs/delay' },
              relativeTo: { enum: RELATIVE_TO },
              template: closed({ subject: { type: 'string' }, body: { type: 'string' } }, { required: ['body'] }),
              templateId: { type: 'string' }, sender: { type: 'string' }, assignee: { type: 'string' },
              dueIn: { $ref: '#/$defs/delay' },
            },
          },
          {
            type: 'object',
            required: ['id', 'type', 'outcomes'], additionalProperties: false,
            properties: {
              id: { type: 'string' }, type: { const: 'outcomeBranch' }, name: { type: 'string' },
              outcomes: { type: 'array', minItems: 1, uniqueItems: true, items: { $ref: '#/$defs/outcome' } },
              timeout: { $ref: '#/$defs/delay' },
            },
          },
          {
            type: 'object',
            required: ['id', 'type', 'criteria'], additionalProperties: false,
            properties: { id: { type: 'string' }, type: { const: 'unenrollCheck' }, name: { type: 'string' }, criteria: { type: 'string' } },
          },
        ],
      },
    },
  };
}
