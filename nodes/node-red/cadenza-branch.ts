// Outcome Branch: one output per outcome of the step before it, plus "timeout"; the number of outputs
// follows the configuration, as the core Switch node's does. Its wires are the paths (F2, F3, F5).
import { branchNode } from '../../engine/model/formats/params';
import { formatProblem } from '../../engine/model/errors';
import { validateNode } from '../../engine/model/validate';
import type { Node, Red } from './red';

export = function register(RED: Red) {
  RED.nodes.registerType('cadenza-branch', function (this: Node, config: Record<string, unknown>) {
    RED.nodes.createNode(this, config);
    const problems = validateNode(branchNode(this.id, config));
    if (problems.length) {
      this.status({ fill: 'red', shape: 'ring', text: `${problems[0].rule} ${problems[0].field}` });
      for (const p of problems) this.error(formatProblem(p));
    }
    this.on('input', (_msg, _send, done) => {
      this.warn(RED._('cadenza-branch.errors.noInput'));
      done();
    });
  });
};
