// Enroll: enroll, re-enroll (resume or restart), un-enroll, update a record (view cadences enroll it
// when it matches), convert, or unsubscribe. Output 1: done; output 2: skipped, with the reason and rule.
import type { Actor } from '../../engine';
import { RECORD_ACTIONS, runRecordAction, type RecordAction } from '../../engine/host';
import { engineDown, hostFor } from './host';
import type { Node, Red } from './red';

const ACTIONS = RECORD_ACTIONS;
type Action = RecordAction;

export = function register(RED: Red) {
  RED.nodes.registerType('cadenza-enroll', function (this: Node, config: Record<string, unknown>) {
    RED.nodes.createNode(this, config);
    const fixed = config.action as Action;
    if (!ACTIONS.includes(fixed)) {
      this.status({ fill: 'red', shape: 'ring', text: 'action' });
      this.error(RED._('cadenza-enroll.errors.action', { action: String(config.action) }));
      return;
    }
    const cadenceId = typeof config.cadence === 'string' ? config.cadence : '';
    this.on('input', (msg, send, done) => {
      const trigger = RED.nodes.getNode(cadenceId) as (Node & { engine?: string; module?: string }) | null;
      const host = trigger ? hostFor(RED, trigger.engine) : undefined;
      if (!trigger || !host) {
        // Answered on the "skipped" output too, so a web form wired to it gets a reply instead of hanging;
        // nothing was stored, and the caller can send it again once the engine runs (D1).
        const why = (trigger && engineDown(RED, trigger.engine)) || RED._('cadenza-enroll.errors.noCadence');
        this.status({ fill: 'red', shape: 'ring', text: why.split('\n')[0] });
        send([null, { ...msg, error: { message: why, rule: 'D1' }, payload: { status: 'skipped', rule: 'D1', reason: `nothing was stored: ${why}` } }]);
        return done(new Error(why));
      }
      const action = (typeof msg.action === 'string' && ACTIONS.includes(msg.action as Action) ? msg.action : fixed) as Action;
      const actor: Actor = typeof msg.actor === 'string' || (msg.actor && typeof msg.actor === 'object') ? (msg.actor as Actor) : String(config.actor || 'node-red');
      host.track((async () => {
        await host.ready;
        const records = action === 'enroll' && Array.isArray(msg.payload) ? msg.payload : [msg.payload];
        const results = await runRecordAction(host.runtime, cadenceId, trigger.module!, action, records, actor, typeof msg.reason === 'string' ? msg.reason : undefined);
        for (const r of results) {
          // A refused input changed nothing: say why on the "skipped" output and keep the flow going.
          const extra = r.error ? { error: { message: r.error.message, rule: r.error.rule } } : {};
          send(r.ok ? [{ ...msg, payload: r.payload }, null] : [null, { ...msg, ...extra, payload: r.payload }]);
        }
        const n = results.filter((r) => r.ok).length;
        const refused = results.find((r) => r.error)?.error;
        if (refused) this.status({ fill: 'yellow', shape: 'ring', text: `${refused.rule}: ${refused.message.slice(0, 40)}` });
        else this.status({ fill: 'green', shape: 'dot', text: RED._('cadenza-enroll.status.enrolled', { count: n, total: results.length }) });
      })().then(() => done(), (err: Error) => done(err)));
    });
  });
};
