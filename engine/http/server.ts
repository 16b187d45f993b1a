// One HTTP module for every host: the API (/api/v1), tracking (/t/…) and the report page (/cadenza/).
// `cadenza serve` listens with it; Node-RED mounts it under /cadenza on its own HTTP server.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Runtime } from '../runtime/runtime';
import { apiHandler, send, type ApiOptions } from './api';
import { reportHandler } from './report-page';
import { trackingHandler } from './tracking';

export function cadenzaHttp(rt: Runtime, options: ApiOptions = {}) {
  const parts = [trackingHandler(rt), apiHandler(rt, options), reportHandler(rt)];
  return async (req: IncomingMessage, res: ServerResponse, next?: () => void): Promise<void> => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://local');
    } catch {
      return send(res, 400, { error: { code: 'invalid_url', rule: 'D4', message: 'malformed URL' } });
    }
    try {
      for (const part of parts) if (await part(req, res, url.pathname, url.searchParams)) return;
    } catch (e) {
      // A request must never take the process down (cadenza serve, Node-RED's server): what a handler
      // did not expect is answered and said, without the request's data.
      rt.reportError(`HTTP ${req.method} ${url.pathname}: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) send(res, 500, { error: { code: 'internal', rule: 'D4', message: 'the request could not be handled; the engine log says why' } });
      else res.end();
      return;
    }
    if (next) return next();
    send(res, 404, { error: { code: 'not_found', rule: 'D4', message: `no route ${url.pathname}` } });
  };
}

/** `cadenza serve`: the HTTP module and the scheduler loop on one port. */
export async function serve(rt: Runtime, port: number, host = '127.0.0.1', options: ApiOptions = {}): Promise<Server> {
  const handle = cadenzaHttp(rt, options);
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(port, host, r));
  rt.start();
  server.on('close', () => void rt.stop());
  return server;
}
