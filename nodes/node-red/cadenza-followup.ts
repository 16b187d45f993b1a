// Follow-up Step: output 1 carries the due action to whatever node performs it (e-mail, HTTP, a CRM);
// output 2 leads to the next step of the cadence.
import { followUpNode } from '../../engine/model/formats/params';
import { formatProblem } from '../../engine/model/errors';
import { validateNode } from '../../engine/model/validate';
import { actionMessage } from './messages';
import type { FollowUpInstance } from './host';
import type { Red } from './red';

export = function register(RED: Red) {
  RED.nodes.registerType('cadenza-followup', function (this: FollowUpInstance, config: Record<string, unknown>) {
    RED.nodes.createNode(this, config);
    const problems = validateNode(followUpNode(this.id, config));
    if (problems.length) {
      this.status({ fill: 'red', shape: 'ring', text: `${problems[0].rule} ${problems[0].field}` });
      for (const p of problems) this.error(formatProblem(p));
    }
    let sent = 0;
    this.deliver = (action) => {
      this.send([actionMessage(action), null]);
      sent++;
      this.status({ fill: 'blue', shape: 'dot', text: RED._('cadenza-followup.status.sent', { count: sent }) });
    };
    this.on('input', (_msg, _send, done) => {
      // Steps are driven by the engine, not by messages: wire records into an Enroll node instead.
      this.warn(RED._('cadenza-followup.errors.noInput'));
      done();
    });
  });
};
