// Follow-up Step: output 1 carries the due action to whatever node performs it (e-mail, HTTP, a CRM);
// output 2 leads to the next step of the cadence.
import { followUpNode, validateNode } from '../../engine/host';
import { actionMessage } from './messages';
import { refuseInput, showProblems, type FollowUpInstance } from './host';
import type { Red } from './red';

export = function register(RED: Red) {
  RED.nodes.registerType('cadenza-followup', function (this: FollowUpInstance, config: Record<string, unknown>) {
    RED.nodes.createNode(this, config);
    showProblems(this, validateNode(followUpNode(this.id, config)));
    // The status (waiting · next due · sent) comes from the store through the host, not from a counter here.
    this.deliver = (action) => this.send([actionMessage(action), null]);
    refuseInput(this, RED._('cadenza-followup.errors.noInput'));
  });
};
