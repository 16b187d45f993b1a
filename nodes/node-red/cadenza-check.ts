// Un-enroll Check: exit criteria for the path after it (U3). Output 1 continues the cadence; output 2
// sends a message for every record that leaves by it.
import { checkNode } from '../../engine/model/formats/params';
import { formatProblem } from '../../engine/model/errors';
import { validateNode } from '../../engine/model/validate';
import type { CheckInstance } from './host';
import type { Red } from './red';

export = function register(RED: Red) {
  RED.nodes.registerType('cadenza-check', function (this: CheckInstance, config: Record<string, unknown>) {
    RED.nodes.createNode(this, config);
    const problems = validateNode(checkNode(this.id, config));
    if (problems.length) {
      this.status({ fill: 'red', shape: 'ring', text: `${problems[0].rule} ${problems[0].field}` });
      for (const p of problems) this.error(formatProblem(p));
    }
    let left = 0;
    this.leave = (msg) => {
      this.send([null, msg]);
      left++;
      this.status({ fill: 'yellow', shape: 'dot', text: RED._('cadenza-check.status.left', { count: left }) });
    };
    this.on('input', (_msg, _send, done) => {
      this.warn(RED._('cadenza-check.errors.noInput'));
      done();
    });
  });
};
