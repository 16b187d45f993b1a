// Tracking routes, relative to where the HTTP module is mounted:
//   GET  /t/open/<token>.gif     records "opened", answers a 1x1 GIF
//   GET  /t/click/<token>        records "clicked", redirects to the signed target URL
//   GET  /t/unsubscribe/<token>  a confirmation page (link scanners must not unsubscribe anyone)
//   POST /t/unsubscribe/<token>  unsubscribes (RFC 8058 one-click, and the page's button) (F8)
// Every token is HMAC-signed by the runtime: a forged or altered token records nothing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CadenzaError } from '../model/errors';
import { escapeHtml, tokenKind } from '../render/render';
import type { Runtime } from '../runtime/runtime';

const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const TRACK = /^\/t\/(open|click|unsubscribe)\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)(\.gif)?$/;

// Tracking pages load nothing, run nothing and cannot be framed (clickjacking the unsubscribe button).
export const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};
/** The one-click body is `List-Unsubscribe=One-Click` (RFC 8058); anything much larger is not one. */
const MAX_UNSUBSCRIBE_BODY = 4096;

function page(res: ServerResponse, status: number, text: string, form = '') {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', ...PAGE_HEADERS });
  res.end(`<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(text)}</title>
<body style="font-family:system-ui,sans-serif;max-width:32em;margin:4em auto;padding:0 1em"><p>${escapeHtml(text)}</p>${form}</body>`);
}

/** The token a tracking path carries, for hosts that must pick which engine signed it. */
export function trackingToken(pathname: string): string | undefined {
  return TRACK.exec(pathname)?.[2];
}

/**
 * A flood guard: the actions whose open / click this process already passed on. An outcome counts once
 * per action and kind (the runtime decides that, durably); this keeps 10,000 hits of one pixel (no key
 * needed) from costing 10,000 store round trips. Bounded, oldest first out.
 */
class Seen {
  private readonly keys = new Set<string>();
  constructor(private readonly max = 20_000) {}
  /** True the first time `key` is seen (while it is remembered). */
  first(key: string): boolean {
    if (this.keys.has(key)) return false;
    if (this.keys.size >= this.max) this.keys.delete(this.keys.values().next().value as string);
    this.keys.add(key);
    return true;
  }
  /** A hit whose outcome could not be recorded (a store error) is not remembered: the next one tries again. */
  forget(key: string): void {
    this.keys.delete(key);
  }
}

async function once(rt: Runtime, seen: Seen, key: string, outcome: 'opened' | 'clicked'): Promise<void> {
  const k = `${outcome}\u0000${key}`;
  if (!seen.first(k)) return;
  try {
    await rt.recordOutcome({ key, outcome });
  } catch (e) {
    // An unknown or finished action is an answer (remembered); anything else may pass: try again next time.
    if (!(e instanceof CadenzaError)) seen.forget(k);
  }
}

/** Handles `/t/...`; returns false for any other path. */
export function trackingHandler(rt: Runtime) {
  const seen = new Seen();
  return async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> => {
    const m = TRACK.exec(pathname);
    if (!m) return false;
    const [, kind, token] = m;
    const method = req.method ?? 'GET';
    if (method !== 'GET' && !(method === 'POST' && kind === 'unsubscribe')) {
      page(res, 405, 'Method not allowed.');
      return true;
    }
    const claims = rt.verifyLink(token);
    // A token works on the route it was signed for only: a click or unsubscribe token opens nothing.
    if (!claims?.k || tokenKind(claims) !== kind) {
      page(res, 400, 'This link is not valid.');
      return true;
    }
    if (kind === 'open') {
      await once(rt, seen, claims.k, 'opened');
      res.writeHead(200, { 'Content-Type': 'image/gif', 'Cache-Control': 'no-store', 'Content-Length': GIF.length, 'X-Content-Type-Options': 'nosniff' });
      res.end(GIF);
    } else if (kind === 'click') {
      if (!claims.u || !/^https?:\/\//.test(claims.u)) page(res, 400, 'This link is not valid.');
      else {
        await once(rt, seen, claims.k, 'clicked');
        res.writeHead(302, { Location: claims.u, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' });
        res.end();
      }
    } else if (method === 'GET') {
      page(res, 200, 'Unsubscribe from these emails?', `<form method="post"><button type="submit" style="font-size:1em;padding:.5em 1.2em">Unsubscribe</button></form>`);
    } else {
      if (Number(req.headers['content-length'] ?? 0) > MAX_UNSUBSCRIBE_BODY) {
        page(res, 413, 'This request is too large.');
        return true;
      }
      let size = 0;
      for await (const chunk of req) {
        size += (chunk as Buffer).length; // drain the one-click body ("List-Unsubscribe=One-Click"), bounded
        if (size > MAX_UNSUBSCRIBE_BODY) {
          page(res, 413, 'This request is too large.');
          req.destroy();
          return true;
        }
      }
      try {
        await rt.unsubscribe(claims.m, claims.r, 'recipient');
        page(res, 200, 'You have been unsubscribed. You will receive no more emails from any of our sequences.');
      } catch {
        page(res, 410, 'This link has expired.');
      }
    }
    return true;
  };
}
