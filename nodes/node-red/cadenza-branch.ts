// Outcome Branch: one output per outcome of the step before it, plus "timeout"; the number of outputs
// follows the configuration, as the core Switch node's does. Its wires are the paths (F2, F3, F5).
import { branchNode, validateNode } from '../../engine/host';
import { refuseInput, showProblems } from './host';
import type { Node, Red } from './red';

export = function register(RED: Red) {
  RED.nodes.registerType('cadenza-branch', function (this: Node, config: Record<string, unknown>) {
    RED.nodes.createNode(this, config);
    showProblems(this, validateNode(branchNode(this.id, config)));
    refuseInput(this, RED._('cadenza-branch.errors.noInput'));
  });
};
