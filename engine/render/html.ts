// Merging record data into an email's HTML without letting the record write HTML or choose where a
// link goes (F6, issue 14). The template is trusted, the record is not:
// - in text, every value is HTML-escaped; `{{{Field}}}` (raw) is honoured only for the owner's
//   signature from the user directory, never for a record's field;
// - inside a tag, a value may fill a quoted attribute (escaped); a merge field in a tag name, an
//   attribute name, an unquoted value or a URL attribute other than href is dropped;
// - in href, a value may fill the path, query or fragment (URL-encoded), never the scheme or host; only
//   links written in the template are click-tracked, so a record cannot get a signed redirect.
// templateProblems() says the same at publish time, so such a template is refused with its reason.

const HTML: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => HTML[c]);

const MERGE = /\{\{(\{)?\s*([A-Za-z0-9_.$-]+)\s*\}?\}\}/g;
const HAS_MERGE = /\{\{/;
const TAG = /<[^<>]*>/g;
// Linear on any tag: `(?<!\s)` starts only at the beginning of a run of whitespace and `(?=(\s+))\1`
// takes it atomically; a plain `(\s+)` retried from every space, and a tag with 50,000 spaces took 7 s.
const ATTR = /(?<!\s)(?=(\s+))\1([^\s=/>]+)(?:(\s*=\s*)("([^"]*)"|'([^']*)'|([^\s>"']+)))?/g;
// Attributes whose value is fetched or followed by the mail client: a record must not pick them.
const URL_ATTRS = new Set(['src', 'srcset', 'action', 'formaction', 'background', 'poster', 'xlink:href', 'style', 'lowsrc', 'dynsrc', 'cite', 'data']);
/** Raw HTML is trusted only from the user directory (the owner's signature). */
const RAW_ALLOWED = new Set(['Owner.signature', 'Owner.Signature']);

export function lookup(data: unknown, path: string): unknown {
  let v: unknown = data;
  for (const part of path.split('.')) {
    // Own fields only: {{constructor}} or {{__proto__}} must not print an object's internals (F6).
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

export function text(data: unknown, path: string): string {
  const v = lookup(data, path);
  return v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/**
 * `s` with each merge field replaced by `fill(path, raw)`, as `s.replace(MERGE, …)` does. The texts are
 * a template's, the same for every record: each is split at its merge fields once (bounded; emptied
 * when full), so a step fills them in without scanning the text again.
 */
export function fillMerge(s: string, fill: (path: string, raw: boolean) => string): string {
  if (!HAS_MERGE.test(s)) return s;
  let split = splits.get(s);
  if (!split) {
    split = { parts: [], fields: [] };
    let last = 0;
    for (const m of s.matchAll(MERGE)) {
      split.parts.push(s.slice(last, m.index));
      split.fields.push({ raw: m[1] !== undefined, path: m[2] });
      last = m.index! + m[0].length;
    }
    split.parts.push(s.slice(last));
    if (splits.size >= SPLITS_MAX) splits.clear();
    splits.set(s, split);
  }
  let out = split.parts[0];
  for (let i = 0; i < split.fields.length; i++) out += fill(split.fields[i].path, split.fields[i].raw) + split.parts[i + 1];
  return out;
}
const splits = new Map<string, { parts: string[]; fields: { raw: boolean; path: string }[] }>();
const SPLITS_MAX = 1000;

/** Merge into HTML text: escaped, except the directory's signature when asked for raw. */
function mergeText(s: string, data: Record<string, unknown>): string {
  return fillMerge(s, (path, raw) => (raw && RAW_ALLOWED.has(path) ? text(data, path) : escapeHtml(text(data, path))));
}

const decodeAmp = (s: string) => s.replace(/&amp;/g, '&');

/**
 * The URL of a template href with merge fields filled (URL-encoded), or undefined when a merge field
 * sits in the scheme or host (a record would choose where the link goes).
 */
export function mergeUrl(template: string, data: Record<string, unknown>): string | undefined {
  const authority = /^\s*([a-z][a-z0-9+.-]*:)(\/\/[^/?#]*)?/i.exec(template);
  if (!authority) return HAS_MERGE.test(template) ? undefined : decodeAmp(template);
  if (HAS_MERGE.test(authority[0])) return undefined;
  const rest = fillMerge(template.slice(authority[0].length), (path) => encodeURIComponent(text(data, path)));
  return decodeAmp(authority[0].trim() + rest);
}

/** Renders a template's HTML with `data`; `link` maps each template link (http/https) to what is sent. */
export function renderHtml(template: string, data: Record<string, unknown>, link: (url: string) => string = (u) => u): string {
  let out = '';
  for (const p of pieces(template)) out += typeof p === 'string' ? p : p.tag ? renderTag(p.tag, data, link) : mergeText(p.text!, data);
  return out;
}

/**
 * A template split once into what every record gets alike (text and tags without a merge field or a
 * tracked link, kept rendered) and what depends on the record or the link (kept to render each time).
 * Every email of a follow-up has the same template, so a step only renders its merge fields and links.
 */
type Piece = string | { tag?: string; text?: string };
const compiled = new Map<string, Piece[]>();
const COMPILED_MAX = 100; // templates come from definitions: a few; emptied when full

function pieces(template: string): Piece[] {
  let out = compiled.get(template);
  if (out) return out;
  out = [];
  let fixed = '';
  const add = (p: Piece) => {
    if (typeof p === 'string') return void (fixed += p);
    if (fixed) out!.push(fixed);
    fixed = '';
    out!.push(p);
  };
  const text = (s: string) => add(HAS_MERGE.test(s) ? { text: s } : s); // no merge field: mergeText returns it as it is
  let last = 0;
  for (const m of template.matchAll(TAG)) {
    text(template.slice(last, m.index));
    // Without a merge field a tag's output depends on nothing but its link: rendered now unless it has one.
    let linked = false;
    const once = HAS_MERGE.test(m[0]) ? '' : renderTag(m[0], {}, (u) => ((linked = true), u));
    add(HAS_MERGE.test(m[0]) || linked ? { tag: m[0] } : once);
    last = m.index! + m[0].length;
  }
  text(template.slice(last));
  if (fixed) out.push(fixed);
  if (compiled.size >= COMPILED_MAX) compiled.clear();
  compiled.set(template, out);
  return out;
}

function renderTag(tag: string, data: Record<string, unknown>, link: (url: string) => string): string {
  const head = /^<\/?[^\s>/]*/.exec(tag)![0];
  if (HAS_MERGE.test(head)) return ''; // a tag named by a record: dropped
  const body = tag.slice(head.length).replace(ATTR, (whole, space: string, name: string, eq: string | undefined, _q, dq?: string, sq?: string, bare?: string) => {
    const value = dq ?? sq ?? bare;
    const lower = name.toLowerCase();
    if (HAS_MERGE.test(name)) return '';
    if (lower === 'href' && value !== undefined) {
      const url = mergeUrl(value, data);
      if (url === undefined) return ''; // a record may not choose the link
      return `${space}href="${escapeHtml(/^https?:\/\//i.test(url) ? link(url) : url)}"`;
    }
    if (value === undefined || !HAS_MERGE.test(value)) return whole;
    if (bare !== undefined || URL_ATTRS.has(lower)) return '';
    return `${space}${name}${eq}"${mergeText(value, data)}"`;
  });
  return head + body;
}

/** Why a template's HTML would lose a merge field at render time (D4 at publish): empty when none. */
export function templateProblems(template: string): string[] {
  const problems: string[] = [];
  for (const m of template.matchAll(TAG)) {
    const tag = m[0];
    if (!HAS_MERGE.test(tag)) continue;
    const head = /^<\/?[^\s>/]*/.exec(tag)![0];
    if (HAS_MERGE.test(head)) problems.push(`a merge field may not name a tag (${tag.slice(0, 60)})`);
    for (const a of tag.slice(head.length).matchAll(ATTR)) {
      const [, , name, , , dq, sq, bare] = a;
      const value = dq ?? sq ?? bare;
      const lower = name.toLowerCase();
      if (HAS_MERGE.test(name)) problems.push(`a merge field may not name an attribute (${name})`);
      else if (value === undefined || !HAS_MERGE.test(value)) continue;
      else if (lower === 'href') {
        if (mergeUrl(value, {}) === undefined) problems.push(`link "${value}": a merge field may fill its path or query, never its scheme or host`);
      } else if (bare !== undefined) problems.push(`attribute ${name}: a merge field needs a quoted value`);
      else if (URL_ATTRS.has(lower)) problems.push(`attribute ${name}: a merge field may not fill a URL or style the client loads`);
    }
  }
  return problems;
}
