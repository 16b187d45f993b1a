// The report page: each cadence as a picture — its graph, a funnel per step (enrolled → executed →
// opened → clicked → replied …), enrollment states, and the latest un-enrollment reasons. Server-rendered
// HTML + inline SVG, no script. Needs the view scope: the key is posted once by the sign-in form (never
// in a URL, where history and logs would keep it), then travels in an HttpOnly cookie.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CadenceDefinition } from '../model/types';
import { escapeHtml as esc } from '../render/render';
import { can, type Actor } from '../runtime/permissions';
import type { Runtime } from '../runtime/runtime';

const COOKIE = 'cadenza_key';
const FUNNEL = ['opened', 'clicked', 'replied', 'auto-replied', 'bounced', 'completed', 'busy', 'no-answer', 'invalid-number', 'delivered', 'read', 'failed'];
type Report = Awaited<ReturnType<Runtime['cadenceReport']>>;

function keyFrom(req: IncomingMessage): string | undefined {
  const c = String(req.headers.cookie ?? '');
  const m = new RegExp(`(?:^|;\\s*)${COOKIE}=([^;]+)`).exec(c);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return undefined; // a malformed cookie is no key: the sign-in form, never a thrown URIError
  }
}

function html(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'X-Frame-Options': 'DENY', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer',
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'", ...headers,
  });
  res.end(body);
}

const shell = (title: string, body: string) => `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${esc(title)}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f5f7f6;color:#1d2b24}
header{background:#1b4d38;color:#fff;padding:14px 28px;font-size:20px;font-weight:600}
main{padding:20px 28px}
section.cadence{background:#fff;border-radius:10px;box-shadow:0 1px 3px #0002;margin:0 0 24px;padding:18px 22px}
h2{margin:0 0 4px;font-size:19px}.meta{color:#5d6f66;font-size:13px;margin-bottom:12px}
.stats{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0 14px}
.stat{background:#eef4f1;border-radius:8px;padding:8px 14px;min-width:90px}.stat b{display:block;font-size:22px}
.stat.stopped{background:#fff4e0}.stat.failed{background:#fde8e8}.stat.completed{background:#e6f4ea}
.reasons{font-size:13px;color:#394b42}.reasons li{margin:2px 0}
svg{max-width:100%;height:auto;background:#fbfdfc;border:1px solid #e2e9e5;border-radius:8px}
.empty{color:#5d6f66}
</style>
<header>Cadenza · cadences</header><main>${body}</main></html>`;

/** Columns by the longest path from the trigger (so every edge goes left to right), rows in order. */
function layout(def: CadenceDefinition): Map<string, { x: number; y: number }> {
  const depth = new Map<string, number>([['trigger', 0]]);
  // The graph is acyclic (C6), so relaxing edges as many times as there are nodes settles every depth.
  for (let i = 0; i <= def.nodes.length; i++) {
    for (const e of def.edges) {
      const d = depth.get(e.from);
      if (d !== undefined && (depth.get(e.to) ?? -1) < d + 1) depth.set(e.to, d + 1);
    }
  }
  const rows = new Map<number, number>();
  const pos = new Map<string, { x: number; y: number }>();
  for (const id of ['trigger', ...def.nodes.map((n) => n.id)]) {
    const d = depth.get(id);
    if (d === undefined) continue;
    const r = rows.get(d) ?? 0;
    rows.set(d, r + 1);
    pos.set(id, { x: 20 + d * 290, y: 20 + r * 150 });
  }
  return pos;
}

function graph(def: CadenceDefinition, report: Report): string {
  const pos = layout(def);
  const W = 210;
  const H = 120;
  const width = Math.max(...[...pos.values()].map((p) => p.x)) + W + 30;
  const height = Math.max(...[...pos.values()].map((p) => p.y)) + H + 30;
  const steps = new Map(report.followUps.map((f) => [f.nodeId, f]));
  const parts: string[] = [];
  const portIndex = new Map<string, number>();
  for (const e of def.edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    const [x1, y1, x2, y2] = [a.x + W, a.y + (e.from === 'trigger' ? 30 : H / 2), b.x, b.y + H / 2];
    parts.push(`<path d="M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}" fill="none" stroke="#8aa89a" stroke-width="2"/>`);
    if (e.port && e.port !== 'out') {
      const k = portIndex.get(e.from) ?? 0;
      portIndex.set(e.from, k + 1);
      parts.push(`<text x="${x1 + 8}" y="${y1 - 8 + k * 14}" font-size="11" fill="#5d6f66">${esc(e.port)}</text>`);
    }
  }
  const t = pos.get('trigger')!;
  parts.push(`<g><rect x="${t.x}" y="${t.y}" width="${W}" height="60" rx="10" fill="#1b4d38"/><text x="${t.x + 12}" y="${t.y + 25}" fill="#fff" font-size="14" font-weight="600">${esc(def.module)} · ${esc(def.enrollment.mode)}</text><text x="${t.x + 12}" y="${t.y + 45}" fill="#c7e9c0" font-size="12">${report.enrolled} enrolled</text></g>`);
  for (const n of def.nodes) {
    const p = pos.get(n.id);
    if (!p) continue;
    const title = esc((n.name ?? n.id).slice(0, 28));
    if (n.type === 'followUp') {
      const s = steps.get(n.id);
      const executed = s?.executed ?? 0;
      const base = Math.max(report.enrolled, 1);
      const bars = [['executed', executed], ...FUNNEL.filter((o) => s?.outcomes[o]).map((o) => [o, s!.outcomes[o].count] as [string, number])].slice(0, 4);
      const rows = bars.map(([label, count], i) => {
        const w = Math.round((Number(count) / base) * (W - 100));
        return `<text x="${p.x + 10}" y="${p.y + 50 + i * 17}" font-size="11" fill="#394b42">${esc(String(label))}</text><rect x="${p.x + 80}" y="${p.y + 41 + i * 17}" width="${Math.max(w, 1)}" height="11" rx="3" fill="${label === 'executed' ? '#2e7d5b' : '#7fb89c'}"/><text x="${p.x + 84 + w}" y="${p.y + 50 + i * 17}" font-size="11" fill="#394b42">${count}</text>`;
      }).join('');
      parts.push(`<g data-step="${esc(n.id)}" data-executed="${executed}"><rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="10" fill="#fff" stroke="#2e7d5b" stroke-width="1.5"/><text x="${p.x + 10}" y="${p.y + 20}" font-size="13" font-weight="600">${title}</text><text x="${p.x + 10}" y="${p.y + 34}" font-size="11" fill="#5d6f66">${esc(n.channel)}${n.delay?.amount ? ` · +${n.delay.amount} ${esc(n.delay.unit)}` : ''}</text>${rows}</g>`);
    } else {
      const label = n.type === 'outcomeBranch' ? `on ${n.outcomes.join(' / ')}${n.timeout ? ` · else after ${n.timeout.amount} ${n.timeout.unit}` : ''}` : `exit if ${n.criteria}`;
      parts.push(`<g data-node="${esc(n.id)}"><rect x="${p.x}" y="${p.y + 25}" width="${W}" height="${H - 50}" rx="35" fill="${n.type === 'outcomeBranch' ? '#eef4f1' : '#fff4e0'}" stroke="#8aa89a"/><text x="${p.x + 14}" y="${p.y + 55}" font-size="12" font-weight="600">${title}</text><text x="${p.x + 14}" y="${p.y + 72}" font-size="10" fill="#5d6f66">${esc(label.slice(0, 40))}</text></g>`);
    }
  }
  return `<svg viewBox="0 0 ${width} ${height}" width="${width}" role="img" aria-label="cadence graph">${parts.join('')}</svg>`;
}

async function render(rt: Runtime, actor: Actor): Promise<string> {
  const sections: string[] = [];
  for (const c of await rt.listCadences(actor)) {
    const report = await rt.cadenceReport(c.id, actor);
    const { definition } = await rt.getCadence(c.id, actor);
    const left = report.latestUnenrollments.slice(0, 5);
    const stat = (k: string, v: number) => `<div class="stat ${k}" data-stat="${k}">${k}<b>${v}</b></div>`;
    sections.push(`<section class="cadence" data-cadence="${esc(c.id)}">
<h2>${esc(c.name)}</h2><div class="meta">${esc(c.module)} · ${esc(c.status)}${c.activeVersion ? ` · version ${c.activeVersion}` : ''}</div>
<div class="stats">${stat('enrolled', report.enrolled)}${stat('active', report.active)}${stat('completed', report.completed)}${stat('stopped', report.stopped)}${stat('failed', report.failed)}</div>
${definition ? graph(definition, report) : '<p class="empty">Not published yet.</p>'}
<h3 style="font-size:14px;margin:14px 0 4px">Latest un-enrollments</h3>
${left.length ? `<ul class="reasons">${left.map((a) => `<li data-reason data-status="${a.status}">${esc(new Date(a.at).toISOString().slice(0, 16).replace('T', ' '))} · ${esc(a.recordId)} · ${a.status === 'failed' ? 'failed: ' : ''}${esc(a.reason)}</li>`).join('')}</ul>` : '<p class="empty">None yet.</p>'}
</section>`);
  }
  return shell('Cadenza', sections.join('') || '<p class="empty">No cadences yet.</p>');
}

/** A sign-in form is `key=<an API key>`: a few hundred bytes; anything larger is not one. */
const MAX_SIGN_IN_BODY = 4096;

/** The `key` of a posted sign-in form, or undefined (too large, or no key). */
async function postedKey(req: IncomingMessage): Promise<string | undefined | 'too large'> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_SIGN_IN_BODY) return 'too large';
  // A host may have parsed the form already (Node-RED's HTTP server runs a body parser first).
  const parsed = (req as { body?: unknown }).body;
  if (parsed && typeof parsed === 'object') {
    const key = (parsed as { key?: unknown }).key;
    return typeof key === 'string' && key.trim() ? key.trim() : undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_SIGN_IN_BODY) return 'too large';
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('key')?.trim() || undefined;
}

const SIGN_IN = `<form method="post"><p>An API key with the <b>view</b> scope:</p><input name="key" type="password" size="50" autocomplete="off" autofocus> <button>Open</button></form>`;

/** Handles the report page at `/` and `/cadenza/`; returns false for other paths. */
export function reportHandler(rt: Runtime) {
  return async (req: IncomingMessage, res: ServerResponse, pathname: string, _query: URLSearchParams): Promise<boolean> => {
    if (!['/', '/cadenza', '/cadenza/'].includes(pathname)) return false;
    if (req.method === 'POST') {
      const key = await postedKey(req);
      const actor = key && key !== 'too large' ? await rt.authenticate(key) : undefined;
      if (key === 'too large') {
        html(res, 413, shell('Cadenza: sign in', '<p>This request is too large.</p>'), { Connection: 'close' });
        req.destroy();
      } else if (!actor) html(res, 401, shell('Cadenza: sign in', `<p>That key was not accepted.</p>${SIGN_IN}`));
      // A key without the view scope is told so here, not let in to a page it may not see (P2).
      else if (!can(actor, 'view')) html(res, 403, shell('Cadenza: sign in', `<p>That key has no <b>view</b> scope (P2): create one with it for the report page.</p>${SIGN_IN}`));
      // Post/redirect/get: the key lives in an HttpOnly cookie, never in a URL. Back to where the form was
      // posted — under a host's mount path (Node-RED's /cadenza/), not its root (the editor).
      else html(res, 303, '', { Location: new URL((req as { originalUrl?: string }).originalUrl ?? pathname, 'http://local').pathname, 'Set-Cookie': `${COOKIE}=${encodeURIComponent(key!)}; HttpOnly; SameSite=Strict; Path=/` });
      return true;
    }
    if (req.method !== 'GET') return false;
    const actor = await rt.authenticate(keyFrom(req));
    if (!actor) {
      html(res, 401, shell('Cadenza: sign in', SIGN_IN));
      return true;
    }
    try {
      html(res, 200, await render(rt, actor));
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      html(res, /permission/.test(msg) ? 403 : 500, shell('Cadenza', `<p>${esc(/permission/.test(msg) ? msg : 'The report could not be shown.')}</p>`));
    }
    return true;
  };
}
