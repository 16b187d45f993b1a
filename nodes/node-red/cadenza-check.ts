// Un-enroll Check: exit criteria for the path after it (U3). Output 1 continues the cadence; output 2
// sends a message for every record that leaves by it.
import { checkNode, validateNode } from '../../engine/host';
import { refuseInput, showProblems, type CheckInstance } from './host';
import type { Red } from './red';

export = function register(RED: Red) {
  RED.nodes.registerType('cadenza-check', function (this: CheckInstance, config: Record<string, unknown>) {
    RED.nodes.createNode(this, config);
    showProblems(this, validateNode(checkNode(this.id, config)));
    let left = 0;
    this.leave = (msg) => {
      this.send([null, msg]);
      left++;
      this.status({ fill: 'yellow', shape: 'dot', text: RED._('cadenza-check.status.left', { count: left }) });
    };
    refuseInput(this, RED._('cadenza-check.errors.noInput'));
  });
};
