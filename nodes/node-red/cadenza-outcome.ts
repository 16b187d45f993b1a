// Record Outcome: a response from outside (an `e-mail in` reply, a CRM webhook, a call log) reaches the
// enrollment it belongs to; in "delivered" / "failed" mode, the performer's verdict on an action (D5):
// wire the e-mail node's Complete node to one and a Catch node to the other. Output 1: recorded;
// output 2: not matched or refused, with the reason.
import { CadenzaError } from '../../engine';
import { outcomeInput } from '../../engine/host';
import { engineDown, hostFor } from './host';
import type { Node, NodeMessage, Red, Send } from './red';

export = function register(RED: Red) {
  RED.nodes.registerType('cadenza-outcome', function (this: Node, config: Record<string, unknown>) {
    RED.nodes.createNode(this, config);
    const mode = config.mode === 'reply' || config.mode === 'delivered' || config.mode === 'failed' ? config.mode : 'outcome';
    const fixed = typeof config.outcome === 'string' && config.outcome ? config.outcome : undefined;
    if (!hostFor(RED, config.engine)) {
      // The engine node's own failure when it has one (a bad setting), else: none is chosen.
      const why = engineDown(RED, config.engine) ?? RED._('cadenza-outcome.errors.noEngine');
      this.status({ fill: 'red', shape: 'ring', text: why.split('\n')[0] });
      this.error(why);
      return;
    }
    let recorded = 0;
    this.on('input', (msg, send, done) => {
      const host = hostFor(RED, config.engine)!;
      host.track(handle(host, msg, send, done));
    });

    const handle = async (host: NonNullable<ReturnType<typeof hostFor>>, msg: NodeMessage, send: Send, done: (err?: Error) => void) => {
      const p = (msg.payload && typeof msg.payload === 'object' ? msg.payload : {}) as Record<string, unknown>;
      try {
        await host.ready;
        let result: unknown;
        if (mode === 'delivered' || mode === 'failed') {
          // The action message passed through the performer: its key rides in msg.cadenza; a Catch node adds msg.error.
          const key = ((msg.cadenza as { key?: unknown } | undefined)?.key ?? p.key ?? msg.key) as string;
          // Which hand-off this verdict is about: a late one on an older attempt must not decide the current one.
          const attempt = (msg.cadenza as { attempt?: unknown } | undefined)?.attempt;
          const err = msg.error as { message?: unknown; permanent?: unknown } | undefined;
          result = { key, delivery: mode, ...(await host.runtime.confirmDelivery(key, mode === 'failed'
            ? { message: typeof err?.message === 'string' ? err.message : 'the performer failed', permanent: err?.permanent === true || msg.permanent === true } : undefined,
          typeof attempt === 'number' && Number.isInteger(attempt) ? attempt : undefined)) };
        } else if (mode === 'reply') {
          // An `e-mail in` message: subject in topic, parsed headers in msg.header.
          const headers = (msg.header ?? msg.headers ?? {}) as Record<string, string>;
          // Matched by its sender when it carries no Message-ID of ours (the mail node set its own).
          const from = typeof msg.from === 'string' ? msg.from : headers.from;
          result = await host.runtime.recordReply({ subject: String(msg.topic ?? ''), headers, inReplyTo: msg.inReplyTo, references: msg.references, from });
          if (!result) {
            send([null, { ...msg, payload: { matched: false, reason: 'no Cadenza Message-ID in In-Reply-To or References, and no active enrollment emailed its sender' } }]);
            return done();
          }
        } else {
          const key = (p.key ?? (msg.cadenza as { key?: unknown } | undefined)?.key ?? msg.key) as string;
          const outcome = (fixed ?? p.outcome ?? msg.outcome) as string;
          if (typeof outcome !== 'string' || !outcome) throw new CadenzaError('invalid_outcome', 'D4', 'no outcome given: set the node\'s Outcome, or send it as msg.payload.outcome or msg.outcome');
          // A "replied" outcome carries the reply, so an out-of-office answer is recorded as such (U10).
          result = await host.runtime.recordOutcome(outcomeInput(key, outcome, { subject: String(msg.topic ?? ''), headers: msg.header ?? msg.headers }));
        }
        recorded++;
        this.status({ fill: 'green', shape: 'dot', text: RED._('cadenza-outcome.status.recorded', { count: recorded }) });
        send([{ ...msg, payload: result }, null]);
        done();
      } catch (err) {
        if (!(err instanceof CadenzaError)) return done(err as Error);
        this.status({ fill: 'yellow', shape: 'ring', text: `${err.rule}: ${err.message.slice(0, 40)}` });
        send([null, { ...msg, payload: { matched: false, reason: err.message, rule: err.rule }, error: { message: err.message, rule: err.rule } }]);
        done();
      }
    };
  });
};
