// The REST API under /api/v1, on plain node:http request/response objects, so the same handler mounts
// in `cadenza serve`, in Node-RED's HTTP server and anywhere else. Every call carries an actor made from
// its API key; the engine checks the permission (P1, P2), so HTTP enforces exactly what the nodes do.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CadenzaError } from '../model/errors';
import { RECORD_LIMITS, shapeProblem, type ShapeLimits } from '../model/validate';
import { requirePermission, type Actor } from '../runtime/permissions';
import type { Runtime } from '../runtime/runtime';
import { openApiDocument } from './openapi';

export interface ApiOptions {
  /** Largest accepted body, in bytes (413 above it). */
  maxBodyBytes?: number;
  /** Depth, size and string limits of each record (400 naming the field above them). */
  recordLimits?: ShapeLimits;
}

/**
 * Any body: a bound on its entries and strings. Depth is checked closer, where the field can be named
 * (per record, per definition): JSON.parse is iterative, so a deep body parses; it just never gets further.
 */
const BODY_LIMITS: ShapeLimits = { depth: 1_000_000, entries: 200_000, string: 1_000_000 };

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly rule = 'D4') {
    super(message);
  }
}

type Ctx = { rt: Runtime; actor: Actor; params: Record<string, string>; query: URLSearchParams; body: unknown; limits: ShapeLimits };
type Handler = (c: Ctx) => Promise<[number, unknown]>;
interface Route {
  method: string;
  path: RegExp;
  handler: Handler;
}

const STATUS: Record<string, number> = {
  forbidden: 403, unknown_cadence: 404, unknown_record: 404, unknown_enrollment: 404, unknown_action: 404, unknown_key: 404, already_revoked: 409, not_enrolled: 404, unknown_version: 404,
  exists: 409, limit: 409, not_active: 409, no_draft: 409, no_version: 409, conflict: 409, cross_module: 409, cap: 409, payload_too_large: 413,
};

const obj = (body: unknown, what = 'body'): Record<string, unknown> => {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'invalid_body', `${what} must be a JSON object`);
  return body as Record<string, unknown>;
};
const str = (v: unknown, field: string): string => {
  if (typeof v !== 'string' || !v.trim()) throw new HttpError(400, 'invalid_body', `${field} must be a non-empty string`);
  return v;
};
const optStr = (v: unknown, field: string): string | undefined => {
  if (v !== undefined && typeof v !== 'string') throw new HttpError(400, 'invalid_body', `${field} must be a string`);
  return v;
};
/** Mail headers: names to strings (a list of strings for repeated headers). */
const headersOf = (v: unknown, field: string): Record<string, string> => {
  const h = obj(v, field);
  for (const [k, x] of Object.entries(h)) {
    if (typeof x !== 'string' && !(Array.isArray(x) && x.every((y) => typeof y === 'string'))) throw new HttpError(400, 'invalid_body', `${field}.${k} must be a string`);
  }
  return h as Record<string, string>;
};
/** D4: a record past the depth, size or string limits is refused naming the field. */
const recordShape = (rec: unknown, field: string, limits: ShapeLimits): void => {
  const p = shapeProblem(rec, field, limits);
  if (p) throw new HttpError(400, 'invalid_record', p.message);
};

/** The paging parameters of an audit read (checked by the engine: a bad one is a 400 naming it). */
const pageQuery = (q: URLSearchParams) => ({ cursor: q.get('cursor') ?? undefined, order: q.get('order') ?? undefined, limit: q.get('limit') ?? undefined });

function route(method: string, pattern: string, handler: Handler): Route {
  const path = new RegExp(`^${pattern.replace(/:(\w+)/g, '(?<$1>[^/]+)')}$`);
  return { method, path, handler };
}

const ROUTES: Route[] = [
  // P1: keys are listed (never with their secret) and revoked; creating one is `cadenza keys create` or a host's button.
  route('GET', '/keys', async ({ rt, actor }) => [200, { keys: await rt.listApiKeys(actor) }]),
  route('DELETE', '/keys/:id', async ({ rt, actor, params }) => (await rt.revokeApiKey(params.id, actor), [200, { id: params.id, revoked: true }])),
  route('GET', '/cadences', async ({ rt, actor, query }) => [200, { cadences: await rt.listCadences(actor, query.get('module') ?? undefined) }]),
  route('POST', '/cadences', async ({ rt, actor, body }) => {
    // P2: a key without "manage" is refused before anything about the definition is read or compared.
    requirePermission(actor, 'manage', 'P2');
    const r = await rt.deploy(obj(body, 'the definition'), actor);
    return [r.action === 'created' ? 201 : 200, r];
  }),
  route('GET', '/cadences/:id', async ({ rt, actor, params }) => [200, await rt.getCadence(params.id, actor)]),
  route('POST', '/cadences/:id/activate', async ({ rt, actor, params }) => [200, await rt.activate(params.id, actor)]),
  route('POST', '/cadences/:id/deactivate', async ({ rt, actor, params }) => {
    await rt.deactivate(params.id, actor);
    return [200, { id: params.id, status: 'inactive' }];
  }),
  route('POST', '/cadences/:id/clone', async ({ rt, actor, params, body }) => {
    const b = obj(body);
    const module = b.module === undefined ? undefined : str(b.module, 'module');
    return [201, await rt.cloneCadence(params.id, str(b.id, 'id'), actor, module)];
  }),
  route('GET', '/cadences/:id/preview', async ({ rt, actor, params }) => [200, await rt.previewEnrollment(params.id, actor)]),
  route('GET', '/cadences/:id/report', async ({ rt, actor, params }) => [200, await rt.cadenceReport(params.id, actor)]),
  route('GET', '/cadences/:id/enrollments', async ({ rt, actor, params, query }) => [200, {
    enrollments: await rt.listEnrollments(params.id, { status: (query.get('status') ?? undefined) as never, after: query.get('after') ?? undefined, limit: query.get('limit') ?? undefined }, actor),
  }]),
  route('POST', '/cadences/:id/enrollments', async ({ rt, actor, params, body, limits }) => {
    const records = obj(body).records;
    if (!Array.isArray(records) || records.length === 0 || records.length > 1000) throw new HttpError(400, 'invalid_body', 'records must be a list of 1 to 1000 records or record ids', 'E1');
    records.forEach((r, i) => recordShape(r, `records[${i}]`, limits));
    return [200, { results: await rt.enroll(params.id, records, actor) }];
  }),
  route('POST', '/cadences/:id/enrollments/:recordId/reenroll', async ({ rt, actor, params, body }) => {
    const mode = obj(body).mode;
    if (mode !== 'resume' && mode !== 'restart') throw new HttpError(400, 'invalid_body', 'mode must be "resume" or "restart"', 'R1');
    return [200, await rt.reenroll(params.id, params.recordId, mode, actor)];
  }),
  // D6: a failed enrollment runs just its failed step again, under the same idempotency key.
  route('POST', '/cadences/:id/enrollments/:recordId/retry', async ({ rt, actor, params }) => [200, await rt.retry(params.id, params.recordId, actor)]),
  route('POST', '/cadences/:id/enrollments/:recordId/unenroll', async ({ rt, actor, params, body }) => {
    const b = body === undefined ? {} : obj(body);
    const reason = b.reason === undefined ? undefined : str(b.reason, 'reason').slice(0, 500);
    return [200, await rt.unenroll(params.id, params.recordId, actor, reason)];
  }),
  // A3, U9: the log a page at a time, newest page first; `next` (a cursor, or null) reads older pages.
  route('GET', '/enrollments/:id/why', async ({ rt, actor, params, query }) => {
    const page = await rt.whyPage(params.id, actor, pageQuery(query));
    if (!page.log.length && !query.get('cursor')) throw new HttpError(404, 'unknown_enrollment', `no enrollment "${params.id}"`);
    return [200, page];
  }),
  route('GET', '/audit', async ({ rt, actor, query }) => [200, await rt.auditPage({ cadenceId: query.get('cadenceId') ?? undefined, recordId: query.get('recordId') ?? undefined }, actor, pageQuery(query))]),
  route('PUT', '/records/:module/:id', async ({ rt, actor, params, body, limits }) => {
    const rec = obj(body, 'the record');
    recordShape(rec, 'record', limits);
    if (rec.id !== undefined && String(rec.id) !== params.id) throw new HttpError(400, 'invalid_body', `record.id "${String(rec.id)}" does not match the path ("${params.id}")`);
    return [200, { recordId: params.id, enrollments: await rt.upsertRecord(params.module, { ...rec, id: params.id }, actor) }];
  }),
  route('POST', '/records/:module', async ({ rt, actor, params, body, limits }) => {
    // Bulk upsert (an import): one set-based engine call; each record answers on its own. A record past
    // the limits is refused here, by itself, naming its field; the others are saved.
    const records = obj(body).records;
    if (!Array.isArray(records) || records.length === 0 || records.length > 1000) throw new HttpError(400, 'invalid_body', 'records must be a list of 1 to 1000 records', 'D4');
    const shapes = records.map((r, i) => shapeProblem(r, `records[${i}]`, limits));
    const fine = records.filter((_r, i) => !shapes[i]);
    const saved = fine.length ? await rt.upsertRecords(params.module, fine, actor) : [];
    let next = 0;
    const results = records.map((r, i) => {
      const p = shapes[i];
      if (p) return { recordId: idOf(r), status: 'refused', error: { code: 'invalid_record', rule: 'D4', message: p.message } };
      const a = saved[next++];
      return 'error' in a ? { recordId: a.recordId, status: 'refused', error: { code: a.error.code, rule: a.error.rule, message: a.error.message } } : { recordId: a.recordId, status: 'saved', enrollments: a.enrollments };
    });
    return [200, { results }];
  }),
  route('POST', '/records/:module/:id/converted', async ({ rt, actor, params }) => [200, { recordId: params.id, left: await rt.convertRecord(params.module, params.id, actor) }]),
  route('POST', '/records/:module/:id/unsubscribed', async ({ rt, actor, params }) => {
    await rt.unsubscribe(params.module, params.id, actor);
    return [200, { recordId: params.id, unsubscribed: true }];
  }),
  route('GET', '/records/:id/enrollments', async ({ rt, actor, params }) => [200, { enrollments: await rt.recordReport(params.id, actor) }]),
  route('POST', '/outcomes', async ({ rt, actor, body }) => {
    const b = obj(body);
    let message: { subject?: string; headers?: Record<string, string> } | undefined;
    if (b.message !== undefined) {
      const m = obj(b.message, 'message');
      message = { subject: optStr(m.subject, 'message.subject'), headers: m.headers === undefined ? undefined : headersOf(m.headers, 'message.headers') };
    }
    return [200, await rt.recordOutcome({ key: str(b.key, 'key'), outcome: str(b.outcome, 'outcome'), message }, actor)];
  }),
  route('POST', '/replies', async ({ rt, actor, body }) => {
    const b = obj(body);
    const headers = b.headers === undefined ? {} : headersOf(b.headers, 'headers');
    for (const f of ['inReplyTo', 'references'] as const) {
      const v = b[f];
      if (v !== undefined && typeof v !== 'string' && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) throw new HttpError(400, 'invalid_body', `${f} must be a string or a list of strings`, 'U10');
    }
    const r = await rt.recordReply({ subject: optStr(b.subject, 'subject') ?? '', headers, inReplyTo: b.inReplyTo, references: b.references, from: optStr(b.from, 'from') }, actor);
    return r ? [200, { matched: true, ...r }] : [404, { matched: false, error: { code: 'unmatched', rule: 'U10', message: 'no enrollment matches this reply (In-Reply-To, References or sender)' } }];
  }),
];

const idOf = (r: unknown): string => (typeof r === 'object' && r !== null && 'id' in r ? String((r as { id: unknown }).id).slice(0, 200) : '(missing id)');

function decode(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    throw new HttpError(400, 'invalid_path', `"${v}" is not a valid path segment`);
  }
}

/** Reads a JSON body up to `limit` bytes; 413 above, 400 for malformed JSON, 415 for other types. */
async function readBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError(413, 'payload_too_large', `body is ${declared} bytes (limit ${limit})`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, 'payload_too_large', `body is over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (!size) return undefined;
  if (!/^application\/(.+\+)?json\b/i.test(String(req.headers['content-type'] ?? ''))) throw new HttpError(415, 'unsupported_media_type', 'send the body as application/json');
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new HttpError(400, 'malformed_json', `the body is not valid JSON: ${(e as Error).message}`);
  }
  const p = shapeProblem(body, 'body', BODY_LIMITS);
  if (p) throw new HttpError(400, 'invalid_body', p.message);
  return body;
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  // JSON is never a page: nothing in it loads, runs or frames, whatever a client makes of it.
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'", 'X-Frame-Options': 'DENY',
  });
  res.end(text);
}

export function errorBody(e: unknown): [number, unknown] {
  if (e instanceof HttpError) return [e.status, { error: { code: e.code, rule: e.rule, message: e.message } }];
  if (e instanceof CadenzaError) return [STATUS[e.code] ?? 400, { error: { code: e.code, rule: e.rule, message: e.message.split('\n')[0], problems: e.problems } }];
  return [500, { error: { code: 'internal', message: 'internal error' } }];
}

/** The API key of a request: `Authorization: Bearer <key>` or `X-API-Key`. Never logged. */
export function requestKey(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  const k = req.headers['x-api-key'];
  return typeof k === 'string' ? k.trim() : undefined;
}

/** Handles `/api/v1/...`; returns false for any other path. */
export function apiHandler(rt: Runtime, options: ApiOptions = {}) {
  const limit = options.maxBodyBytes ?? 1024 * 1024;
  const limits = options.recordLimits ?? RECORD_LIMITS;
  return async (req: IncomingMessage, res: ServerResponse, pathname: string, query: URLSearchParams): Promise<boolean> => {
    if (!pathname.startsWith('/api/v1/') && pathname !== '/api/v1') return false;
    const sub = pathname.slice('/api/v1'.length) || '/';
    try {
      if (req.method === 'GET' && sub === '/openapi.json') {
        send(res, 200, openApiDocument());
        return true;
      }
      const candidates = ROUTES.filter((r) => r.path.test(sub));
      if (!candidates.length) throw new HttpError(404, 'not_found', `no route ${sub}`);
      const r = candidates.find((x) => x.method === req.method);
      if (!r) {
        res.setHeader('Allow', candidates.map((x) => x.method).join(', '));
        throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${sub}`);
      }
      const actor = await rt.authenticate(requestKey(req));
      if (!actor) throw new HttpError(401, 'unauthorized', 'send an API key (Authorization: Bearer <key>)', 'P1');
      const body = req.method === 'GET' ? undefined : await readBody(req, limit);
      const params = Object.fromEntries(Object.entries(r.path.exec(sub)!.groups ?? {}).map(([k, v]) => [k, decode(v)]));
      const [status, out] = await r.handler({ rt, actor, params, query, body, limits });
      send(res, status, out);
    } catch (e) {
      const [status, out] = errorBody(e);
      send(res, status, out);
    }
    return true;
  };
}

export const API_ROUTES = ROUTES.map((r) => ({ method: r.method, path: r.path.source }));
