// The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json. Scopes are the P1 permissions.
import schema from '../../schema/cadence.schema.json';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schemaObj: unknown, description = 'OK') => ({ description, content: { 'application/json': { schema: schemaObj } } });
const errors = {
  400: json(ref('Error'), 'Invalid input (D4): the error names the field and the rule'),
  401: json(ref('Error'), 'No or unknown API key'),
  403: json(ref('Error'), 'The key lacks the scope this needs (P2)'),
  404: json(ref('Error'), 'Unknown cadence, record or enrollment'),
  409: json(ref('Error'), 'Refused by a rule (limits C3, lifecycle C2, …)'),
  413: json(ref('Error'), 'Body too large'),
  415: json(ref('Error'), 'Body is not JSON'),
};
const op = (summary: string, scope: string, extra: Record<string, unknown> = {}) => ({
  summary, security: [{ apiKey: [scope] }], 'x-scope': scope, responses: { 200: json({ type: 'object' }), ...errors }, ...extra,
});
const body = (s: unknown) => ({ requestBody: { required: true, content: { 'application/json': { schema: s } } } });
/** Audit reads: `log` is oldest first within a page; `next` is the cursor of the page after it (older for "desc"), or null. */
const paged = {
  parameters: [
    { name: 'cursor', in: 'query', description: 'the `next` of an earlier page (before:<seq> or after:<seq>)', schema: { type: 'string', pattern: '^(before|after):[0-9]{1,15}$' } },
    { name: 'order', in: 'query', description: 'where a first page starts: desc (the newest, default) or asc (the oldest)', schema: { enum: ['asc', 'desc'] } },
    { name: 'limit', in: 'query', description: 'stored rows per page (a step\'s entries share one)', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
  ],
  responses: {
    200: json({ type: 'object', required: ['log', 'next'], properties: { log: { type: 'array', items: { type: 'object' } }, next: { type: ['string', 'null'] } } }),
    ...errors,
  },
};
const p = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: { title: 'Cadenza API', version: '1.0.0', description: 'Cadences, enrollments, records, outcomes and reports. Scopes: view, manage, enroll, unenroll ("manageAutomation" grants all).' },
    servers: [{ url: '/api/v1' }],
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer cz_… (or X-API-Key)' } },
      schemas: {
        Error: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, rule: { type: 'string' }, message: { type: 'string' }, problems: { type: 'array' } } } } },
        CadenceDefinition: schema,
      },
    },
    paths: {
      '/cadences': {
        get: op('List cadences', 'view'),
        post: op('Publish a definition: creates the cadence, or publishes a new version when it changed (V1, V2)', 'manage', body(ref('CadenceDefinition'))),
      },
      '/cadences/{id}': { parameters: [p('id')], get: op('A cadence and its published definition', 'view') },
      '/cadences/{id}/activate': { parameters: [p('id')], post: op('Activate (V3)', 'manage') },
      '/cadences/{id}/deactivate': { parameters: [p('id')], post: op('Deactivate: halts every scheduled action (V3)', 'manage') },
      '/cadences/{id}/clone': { parameters: [p('id')], post: op('Clone within the module (C1)', 'manage', body({ type: 'object', required: ['id'], properties: { id: { type: 'string' }, module: { type: 'string' } } })) },
      '/cadences/{id}/preview': { parameters: [p('id')], get: op('How many known records the view would enroll now (E2)', 'view') },
      '/cadences/{id}/report': { parameters: [p('id')], get: op('The report (A1)', 'view') },
      '/cadences/{id}/enrollments': {
        parameters: [p('id')],
        get: op('Enrollments of the cadence', 'view', { parameters: [{ name: 'status', in: 'query', schema: { enum: ['active', 'completed', 'stopped', 'failed'] } }, { name: 'after', in: 'query', schema: { type: 'string' } }, { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 1000 } }] }),
        post: op('Enroll records, or record ids, with an answer for each (E1)', 'enroll', body({ type: 'object', required: ['records'], properties: { records: { type: 'array', maxItems: 1000 } } })),
      },
      '/cadences/{id}/enrollments/{recordId}/reenroll': { parameters: [p('id'), p('recordId')], post: op('Re-enroll: resume or restart (R1-R5)', 'enroll', body({ type: 'object', required: ['mode'], properties: { mode: { enum: ['resume', 'restart'] } } })) },
      '/keys': { get: op('API keys, without their secrets (P1)', 'manage') },
      '/keys/{id}': { parameters: [p('id')], delete: op('Revoke an API key: it stops working at once (P1)', 'manage') },
      '/cadences/{id}/enrollments/{recordId}/retry': { parameters: [p('id'), p('recordId')], post: op('Retry the failed step of a failed enrollment under the same key (D6)', 'enroll') },
      '/cadences/{id}/enrollments/{recordId}/unenroll': { parameters: [p('id'), p('recordId')], post: op('Un-enroll (U5)', 'unenroll') },
      '/enrollments/{id}/why': { parameters: [p('id')], get: op('The ordered log of inputs and decisions (A3), a page at a time: the newest page unless a cursor says otherwise', 'view', paged) },
      '/audit': {
        get: op('The audit of a cadence or a record (U9), a page at a time', 'view', { ...paged, parameters: [{ name: 'cadenceId', in: 'query', schema: { type: 'string' } }, { name: 'recordId', in: 'query', schema: { type: 'string' } }, ...paged.parameters] }),
      },
      '/records/{module}': { parameters: [p('module')], post: op('Save many records at once (an import); view cadences enroll them (E2). Each answers: saved with its enrollments, or refused with the rule (D4)', 'enroll', body({ type: 'object', required: ['records'], properties: { records: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'object' } } } })) },
      '/records/{module}/{id}': { parameters: [p('module'), p('id')], put: op('Save the latest snapshot of a record; view cadences enroll it (E2)', 'enroll', body({ type: 'object' })) },
      '/records/{module}/{id}/converted': { parameters: [p('module'), p('id')], post: op('Converted: leaves all its cadences (E8)', 'unenroll') },
      '/records/{module}/{id}/unsubscribed': { parameters: [p('module'), p('id')], post: op('No more emails from any cadence (F8)', 'unenroll') },
      '/records/{id}/enrollments': { parameters: [p('id')], get: op('Every cadence the record is or was in (A2)', 'view') },
      '/outcomes': { post: op('Record an outcome by the action key', 'enroll', body({ type: 'object', required: ['key', 'outcome'], properties: { key: { type: 'string' }, outcome: { type: 'string' }, message: { type: 'object' } } })) },
      '/replies': { post: op('An inbound email: matched by In-Reply-To, References or sender; auto-replies become auto-replied (U10)', 'enroll', body({ type: 'object', properties: { subject: { type: 'string' }, from: { type: 'string' }, headers: { type: 'object' } } })) },
    },
  };
}
