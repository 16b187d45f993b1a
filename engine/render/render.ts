// Rendering a due follow-up into what the host performs (F6, F7): merge fields, HTML escaping,
// Message-ID, signed unsubscribe link. Runs in the runtime just before the outbox row is written,
// so the outbox holds exactly what will be sent, and a retry re-sends the same bytes.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ActionRef, RecordSnapshot } from '../machine/types';
import { phoneOf } from '../model/contact';
import type { FollowUpNode, Template } from '../model/types';
import { escapeHtml, fillMerge, renderHtml, text as mergeText } from './html';

export { escapeHtml };

// Header-bound values (subject, names, addresses) lose CR, LF and every control character, so a
// record's "Ann\r\nBcc: …" can never add a header (issue 14).
const HEADER_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;
export const headerSafe = (s: string) => s.replace(HEADER_UNSAFE, ' ').replace(/ {2,}/g, ' ').trim();

/** `{{First_Name}}`, `{{Owner.signature}}` into text (plain text, subjects, task descriptions); HTML goes through renderHtml. */
export function merge(text: string, data: Record<string, unknown>, html: boolean): string {
  if (html) return renderHtml(text, data);
  return fillMerge(text, (path) => mergeText(data, path));
}

export function sign(payload: string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

/** A token that names an action and cannot be forged or altered without the secret. */
export function signedToken(payload: Record<string, string>, secret: string): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${body}.${sign(body, secret)}`;
}

export function verifyToken(token: string, secret: string): Record<string, string> | null {
  const [body, mac] = token.split('.');
  if (!body || !mac) return null;
  const want = Buffer.from(sign(body, secret));
  const got = Buffer.from(mac);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return null;
  try {
    return JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

/**
 * F6: a unique Message-ID that carries its action's key, signed, so a reply's In-Reply-To or
 * References leads back to the follow-up it answers without a lookup table.
 */
export function messageIdFor(key: string, domain: string, secret: string): string {
  const body = Buffer.from(key).toString('base64url');
  return `<cz.${body}.${sign(body, secret).slice(0, 16)}@${domain}>`;
}

/** The action key of the first of our Message-IDs found in In-Reply-To / References values. */
export function keyFromMessageIds(values: unknown, secret: string): string | null {
  const text = (Array.isArray(values) ? values : [values]).filter((v) => typeof v === 'string').join(' ');
  for (const m of text.matchAll(/<cz\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{16})@[^>]+>/g)) {
    if (sign(m[1], secret).slice(0, 16) === m[2]) return Buffer.from(m[1], 'base64url').toString('utf8');
  }
  return null;
}

/** What a tracking token is for; signed with it, so a token works on its own route only. */
export type TokenKind = 'open' | 'click' | 'unsubscribe';

/** The kind a token was signed for (tokens from before kinds were signed: by their claims). */
export function tokenKind(claims: Record<string, string>): TokenKind {
  if (claims.t === 'open' || claims.t === 'click' || claims.t === 'unsubscribe') return claims.t;
  return claims.u ? 'click' : claims.r ? 'unsubscribe' : 'open';
}

const pixel = (key: string, base: string, secret: string) => `<img src="${base}/t/open/${signedToken({ t: 'open', k: key }, secret)}.gif" width="1" height="1" alt="">`;
const clickUrl = (key: string, base: string, secret: string) => (url: string) => `${base}/t/click/${signedToken({ t: 'click', k: key, u: url }, secret)}`;

export interface RenderOptions {
  templates: Readonly<Record<string, Template>>;
  defaultSender: string;
  secret: string;
  baseUrl: string;
  users?: Readonly<Record<string, { name?: string; email?: string; signature?: string }>>;
  /** Add an open pixel and rewrite links for click tracking (default true). */
  tracking?: boolean;
}

export interface EmailPayload {
  to: string;
  from: string;
  subject: string;
  html: string;
  text: string;
  messageId: string;
  unsubscribeUrl: string;
  headers: Record<string, string>;
}

export interface ActivityPayload {
  assignee: string;
  subject: string;
  description: string;
  dueAt: number;
  notify: true;
}

export interface WhatsAppPayload {
  to: string;
  templateId: string;
  params: Record<string, unknown>;
}

/**
 * The merge data: the record's fields, plus `Owner` from the user directory only — a record's own
 * `Owner` object (a forged signature, name or address) is never used.
 */
function mergeData(record: RecordSnapshot, opts: RenderOptions): Record<string, unknown> {
  const ownerId = typeof record.data.Owner === 'string' || typeof record.data.Owner === 'number' ? String(record.data.Owner) : undefined;
  const entry = ownerId && opts.users && Object.hasOwn(opts.users, ownerId) ? opts.users[ownerId] : undefined;
  const owner = ownerId ? { ...(entry ?? {}), id: ownerId } : undefined;
  return { ...record.data, Owner: owner, Record_Id: record.id };
}

/**
 * The plain-text part from the template's HTML: block ends become line breaks (a blank line between
 * paragraphs), other tags go, and the entities a template author writes are decoded. Every pattern is
 * linear (`[^<>]` stops at the next tag; trailing blanks are matched from a run's start only): on a
 * merged record's 100,000 spaces the backtracking forms took 29 s.
 */
export function plainText(html: string): string {
  return html
    .replace(/\r\n?/g, '\n')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|h[1-6]|blockquote|pre|table)>/gi, '\n\n')
    .replace(/<\/(li|tr)>/gi, '\n')
    .replace(/<li(?:\s[^<>]*)?>/gi, '- ')
    .replace(/<[^<>]+>/g, '')
    .replace(/&nbsp;/g, ' ').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&')
    .replace(/(?<![ \t])[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

export function render(
  action: ActionRef,
  node: FollowUpNode,
  record: RecordSnapshot,
  opts: RenderOptions,
  dueAt: number,
): EmailPayload | ActivityPayload | WhatsAppPayload {
  const tpl = node.template ?? (node.templateId ? opts.templates[node.templateId] : undefined) ?? { body: '' };
  const data = mergeData(record, opts);
  if (node.channel === 'email') {
    const from = node.sender ?? opts.defaultSender;
    const domain = from.split('@')[1] ?? 'cadenza.local';
    const base = opts.baseUrl.replace(/\/$/, '');
    const unsubscribeUrl = `${base}/t/unsubscribe/${signedToken({ t: 'unsubscribe', k: action.key, r: record.id, m: record.module }, opts.secret)}`;
    // Only links written in the template are tracked (renderHtml maps them); record text is escaped.
    const body = opts.tracking === false ? renderHtml(tpl.body, data) : renderHtml(tpl.body, data, clickUrl(action.key, base, opts.secret)) + pixel(action.key, base, opts.secret);
    const html = `${body}<p style="font-size:12px;color:#888"><a href="${escapeHtml(unsubscribeUrl)}">Unsubscribe</a></p>`;
    return {
      to: headerSafe(String(record.data.Email)), from: headerSafe(from), subject: headerSafe(merge(tpl.subject ?? '', data, false)),
      html, text: `${plainText(merge(tpl.body, data, false))}\n\nUnsubscribe: ${unsubscribeUrl}`,
      messageId: messageIdFor(action.key, domain, opts.secret), unsubscribeUrl,
      headers: { 'List-Unsubscribe': `<${unsubscribeUrl}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click', 'X-Cadenza-Key': action.key },
    };
  }
  if (node.channel === 'whatsapp') {
    return { to: headerSafe(phoneOf(record.data) ?? ''), templateId: node.templateId ?? '', params: data };
  }
  const assignee = headerSafe(!node.assignee || node.assignee === 'owner' ? String(record.data.Owner ?? 'owner') : node.assignee);
  return {
    assignee, subject: headerSafe(merge(tpl.subject ?? node.name ?? `${node.channel === 'call' ? 'Call' : 'Task'}: ${record.id}`, data, false)),
    description: merge(tpl.body, data, false), dueAt, notify: true,
  };
}
