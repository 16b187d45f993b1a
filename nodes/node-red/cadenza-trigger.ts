// Cadence Trigger: the cadence's settings; its output wire leads to the first step. Deploy publishes.
import { triggerSettings, validateTrigger } from '../../engine/host';
import { describeError, hostFor, showProblems, type TriggerInstance } from './host';
import type { Red } from './red';

export = function register(RED: Red) {
  RED.nodes.registerType('cadenza-trigger', function (this: TriggerInstance, config: Record<string, unknown>) {
    RED.nodes.createNode(this, config);
    const host = hostFor(RED, config.engine);
    const settings = triggerSettings(config);
    // Enroll nodes reach the engine and the module through their cadence's trigger.
    Object.assign(this, { engine: config.engine, module: settings.module });
    this.showDeployed = (text) => this.status({ fill: 'green', shape: 'dot', text });
    this.showProblem = (err) => {
      // The status names the first rule and field whole; the full text, with what to do, goes to the debug sidebar.
      const first = (err as { problems?: { rule: string; field: string }[] }).problems?.[0];
      this.status({ fill: 'red', shape: 'ring', text: first ? `${first.rule} ${first.field}` : describeError(err) });
      this.error(describeError(err));
    };
    if (!host) {
      // The engine node's own failure when it has one (Node.js too old for the embedded store, …).
      const why = (typeof config.engine === 'string' ? (RED.nodes.getNode(config.engine) as { startError?: string } | null)?.startError : undefined) ?? RED._('cadenza-trigger.errors.noEngine');
      this.status({ fill: 'red', shape: 'ring', text: why });
      this.error(why);
      return;
    }
    // Checked again at deploy with the whole graph; here each field, so the node shows what is wrong.
    if (!showProblems(this, validateTrigger({ id: this.id, ...settings }))) this.status({ fill: 'grey', shape: 'ring', text: RED._('cadenza-trigger.status.deploying') });
    // Deleting or disabling this node deactivates the cadence (V3): the engine sees it in the next deploy.
  });
};
