// Config node: the engine settings (store file, time zone, sender, limits, signing secret).
import { CadenzaError } from '../../engine';
import { mountAdminRoutes } from './admin';
import { NodeRedHost } from './host';
import type { Node, Red } from './red';

export = function register(RED: Red) {
  mountAdminRoutes(RED);
  RED.nodes.registerType(
    'cadenza-config',
    function (this: Node & { host?: NodeRedHost; startError?: string }, config: Record<string, unknown>) {
      RED.nodes.createNode(this, config);
      try {
        this.host = new NodeRedHost(RED, this, config);
        this.host.ready.catch((err) => this.error(RED._('cadenza-config.errors.store', { error: String(err) })));
      } catch (err) {
        // Kept so the cadence nodes can show why there is no engine (a bad setting, or Node.js without node:sqlite).
        this.startError = err instanceof Error ? err.message : String(err);
        const settings = err instanceof CadenzaError && err.code === 'invalid_options';
        this.error(RED._(settings ? 'cadenza-config.errors.settings' : 'cadenza-config.errors.store', { error: this.startError }));
      }
      this.on('close', (_removed, done) => {
        void (this.host?.close() ?? Promise.resolve()).finally(done);
      });
    },
    { credentials: { secret: { type: 'password' } } },
  );
};
