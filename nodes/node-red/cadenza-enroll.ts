// Enroll: enroll, re-enroll (resume or restart), un-enroll, update a record (view cadences enroll it
// when it matches), convert, or unsubscribe. Output 1: done; output 2: skipped, with the reason and rule.
import { CadenzaError } from '../../engine/model/errors';
import type { Actor } from '../../engine/runtime/permissions';
import { hostFor } from './host';
import type { Node, NodeMessage, Red } from './red';

const ACTIONS = ['enroll', 'resume', 'restart', 'unenroll', 'update', 'convert', 'unsubscribe'] as const;
type Action = (typeof ACTIONS)[number];

const recordId = (p: unknown): string | undefined =>
  typeof p === 'string' || typeof p === 'number' ? String(p) : p && typeof p === 'object' && 'id' in p ? String((p as { id: unknown }).id) : undefined;

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
    this.on('input', async (msg, send, done) => {
      const trigger = RED.nodes.getNode(cadenceId) as (Node & { engine?: string; module?: string }) | null;
      const host = trigger ? hostFor(RED, trigger.engine) : undefined;
      if (!trigger || !host) {
        this.status({ fill: 'red', shape: 'ring', text: RED._('cadenza-enroll.errors.noCadence') });
        return done(new Error(RED._('cadenza-enroll.errors.noCadence')));
      }
      const rt = host.runtime;
      const action = (typeof msg.action === 'string' && ACTIONS.includes(msg.action as Action) ? msg.action : fixed) as Action;
      const actor: Actor = typeof msg.actor === 'string' || (msg.actor && typeof msg.actor === 'object') ? (msg.actor as Actor) : String(config.actor || 'node-red');
      const out = (payload: unknown, ok: boolean, extra: NodeMessage = {}) => send(ok ? [{ ...msg, ...extra, payload }, null] : [null, { ...msg, ...extra, payload }]);
      try {
        await host.ready;
        const id = recordId(msg.payload);
        switch (action) {
          case 'enroll': {
            const records = Array.isArray(msg.payload) ? msg.payload : [msg.payload];
            const answers = await rt.enroll(cadenceId, records, actor);
            for (const a of answers) out(a, a.status === 'enrolled');
            const n = answers.filter((a) => a.status === 'enrolled').length;
            this.status({ fill: 'green', shape: 'dot', text: RED._('cadenza-enroll.status.enrolled', { count: n, total: answers.length }) });
            break;
          }
          case 'resume':
          case 'restart': {
            if (!id) throw new CadenzaError('invalid_record', 'D4', 'msg.payload must be a record id or a record with an id');
            const a = await rt.reenroll(cadenceId, id, action, actor);
            out(a, a.status === 'enrolled');
            break;
          }
          case 'unenroll': {
            if (!id) throw new CadenzaError('invalid_record', 'D4', 'msg.payload must be a record id or a record with an id');
            const e = await rt.unenroll(cadenceId, id, actor, typeof msg.reason === 'string' ? msg.reason : undefined);
            out({ recordId: id, status: e.status, reason: e.reason }, true);
            break;
          }
          case 'update': {
            const answers = await rt.upsertRecord(trigger.module!, msg.payload, actor);
            out({ recordId: id, enrollments: answers }, true);
            break;
          }
          case 'convert':
            if (!id) throw new CadenzaError('invalid_record', 'D4', 'msg.payload must be a record id or a record with an id');
            out({ recordId: id, left: await rt.convertRecord(trigger.module!, id, actor) }, true);
            break;
          case 'unsubscribe':
            if (!id) throw new CadenzaError('invalid_record', 'D4', 'msg.payload must be a record id or a record with an id');
            await rt.unsubscribe(trigger.module!, id, actor);
            out({ recordId: id, unsubscribed: true }, true);
            break;
        }
        done();
      } catch (err) {
        if (!(err instanceof CadenzaError)) return done(err as Error);
        // A refused input: nothing changed; say why on the "skipped" output and keep the flow going.
        this.status({ fill: 'yellow', shape: 'ring', text: `${err.rule}: ${err.message.slice(0, 40)}` });
        out({ recordId: recordId(msg.payload), status: 'skipped', reason: err.message, rule: err.rule }, false, { error: { message: err.message, rule: err.rule } });
        done();
      }
    });
  });
};
