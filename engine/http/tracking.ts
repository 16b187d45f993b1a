// Tracking routes for any Node HTTP server or Express app (Node-RED mounts them on its httpNode):
//   GET  /cadenza/open/<token>.gif     records "opened", answers a 1x1 GIF
//   GET  /cadenza/click/<token>        records "clicked", redirects to the signed target URL
//   GET  /cadenza/unsubscribe/<token>  unsubscribes the record from emails (F8) and confirms
//   POST /cadenza/unsubscribe/<token>  RFC 8058 one-click unsubscribe
// Every token is signed by the runtime, so a link cannot be forged or pointed elsewhere.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Runtime } from '../runtime/runtime';

const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

function page(res: ServerResponse, status: number, text: string) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`<!doctype html><meta charset="utf-8"><title>${text}</title><p style="font-family:sans-serif">${text}</p>`);
}

/** Returns a handler `(req, res, next?)`; requests it does not own go to `next` (or get a 404). */
export function trackingHandler(rt: Runtime) {
  return async (req: IncomingMessage, res: ServerResponse, next?: () => void): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://local');
    const m = /^\/cadenza\/(open|click|unsubscribe)\/([A-Za-z0-9_.-]+?)(\.gif)?$/.exec(url.pathname);
    if (!m || (req.method !== 'GET' && !(req.method === 'POST' && m[1] === 'unsubscribe'))) {
      if (next) return next();
      return page(res, 404, 'Not found');
    }
    const claims = rt.verifyLink(m[2]);
    if (!claims?.k) return page(res, 400, 'This link is not valid.');
    try {
      if (m[1] === 'open') {
        await rt.recordOutcome({ key: claims.k, outcome: 'opened' }).catch(() => undefined);
        res.writeHead(200, { 'Content-Type': 'image/gif', 'Cache-Control': 'no-store', 'Content-Length': GIF.length });
        return void res.end(GIF);
      }
      if (m[1] === 'click') {
        if (!claims.u || !/^https?:\/\//.test(claims.u)) return page(res, 400, 'This link is not valid.');
        await rt.recordOutcome({ key: claims.k, outcome: 'clicked' }).catch(() => undefined);
        res.writeHead(302, { Location: claims.u, 'Cache-Control': 'no-store' });
        return void res.end();
      }
      await rt.unsubscribe(claims.m, claims.r, 'recipient');
      return page(res, 200, 'You have been unsubscribed. You will receive no more emails from this sequence.');
    } catch {
      return page(res, 410, 'This link has expired.');
    }
  };
}
