// The problems of a Node-RED flow as the editor holds it, before deploy: each trigger's compiled graph
// run through the engine's own validation, plus what only the flow shows — an ordinary node (a core
// `delay`, a `function`) sitting between cadence nodes, which silently cuts the cadence there, and
// cadence nodes no trigger reaches. Pure: the admin endpoint calls it with the editor's nodes.
import { CadenzaError, type Problem } from '../errors';
import { validateDefinition, validateNode } from '../validate';
import { CADENCE_NODE_TYPES, compileTrigger, graphOutputs, NODE_RED_TYPES, type FlowNode } from './node-red';
import { branchNode, checkNode, followUpNode, list } from './params';

/** Every problem of the flow, each naming the Node-RED node it is on (`node`). */
export function checkNodeRedFlow(flow: readonly FlowNode[]): Problem[] {
  const byId = new Map(flow.map((n) => [n.id, n]));
  const disabledTabs = new Set(flow.filter((n) => n.type === 'tab' && n.disabled === true).map((n) => n.id));
  const live = (n: FlowNode | undefined): n is FlowNode => !!n && !n.d && !(n.z && disabledTabs.has(n.z));
  const label = (n: FlowNode) => `"${typeof n.name === 'string' && n.name ? n.name : n.type}"`;
  const problems: Problem[] = [];
  const reached = new Set<string>();
  /** Cadence nodes another node explains: fed by an ordinary node on a cadence wire, or by a cadence node that is itself cut off. */
  const explained = new Set<string>();

  for (const t of flow) {
    if (t.type !== NODE_RED_TYPES.trigger || !live(t)) continue;
    let def: ReturnType<typeof compileTrigger>;
    try {
      def = compileTrigger(flow, t.id);
    } catch (e) {
      // A graph that cannot be read as drawn (a branch's wires out of step with its outcomes) says where.
      if (!(e instanceof CadenzaError)) throw e;
      problems.push(...e.problems);
      continue;
    }
    for (const n of def.nodes) reached.add(n.id);
    // The trigger's own settings and the graph: problems without a node belong to the trigger.
    // Node-RED has no stored email templates: an email is written in its step (a template id is for
    // WhatsApp, checked against the approved list of the trigger's engine node when it has one).
    const engine = typeof t.engine === 'string' ? byId.get(t.engine) : undefined;
    for (const p of validateDefinition(def, { emailTemplates: [], whatsappTemplates: list(engine?.whatsappTemplates) })) problems.push({ ...p, node: p.node && byId.has(p.node) ? p.node : t.id });
  }

  // An ordinary node on a cadence wire: the engine never sends messages along these wires (it keeps
  // the timers), so whatever follows it is cut off. Name it where it sits, and say what to use instead.
  for (const from of flow) {
    if (!live(from) || (from.type !== NODE_RED_TYPES.trigger && !CADENCE_NODE_TYPES.has(from.type))) continue;
    for (const { targets } of graphOutputs(from)) {
      for (const id of targets) {
        const hop = byId.get(id);
        if (!live(hop) || CADENCE_NODE_TYPES.has(hop.type)) continue;
        const next = firstCadenceNodeAfter(hop, byId, live);
        if (!next) continue;
        explained.add(next.id);
        problems.push({
          rule: 'F1', field: 'wires', node: hop.id,
          message: hop.type === 'delay'
            ? `this delay node sits between ${label(from)} and ${label(next)}: a cadence's timing lives in the engine, not in messages, so nothing passes here and ${label(next)} never runs. Remove it, wire ${label(from)} straight to ${label(next)}, and use the step's After field for the delay`
            : `this ${hop.type} node sits between ${label(from)} and ${label(next)}: a cadence's path runs in the engine, not in messages, so ${label(next)} never runs. Wire ${label(from)} straight to ${label(next)}`,
        });
      }
    }
  }

  // Cadence nodes no live trigger reaches: their own fields still get checked, and the first of each
  // cut-off path says why it never runs (the ones after it follow from that, so they stay quiet).
  const cut = flow.filter((n) => live(n) && CADENCE_NODE_TYPES.has(n.type) && !reached.has(n.id));
  for (const n of cut) for (const { targets } of graphOutputs(n)) for (const id of targets) explained.add(id);
  for (const n of cut) {
    const own = n.type === NODE_RED_TYPES.followUp ? followUpNode(n.id, n) : n.type === NODE_RED_TYPES.branch ? branchNode(n.id, n) : checkNode(n.id, n);
    for (const p of validateNode(own)) problems.push({ ...p, node: n.id });
    if (!explained.has(n.id)) problems.push({ rule: 'C6', field: 'wires', node: n.id, message: 'no Cadence Trigger reaches this node, so it never runs: wire it from the trigger or from a step of a cadence' });
  }
  return problems;
}

/** The first cadence node reached by following every output of ordinary nodes from `start`. */
function firstCadenceNodeAfter(start: FlowNode, byId: Map<string, FlowNode>, live: (n: FlowNode | undefined) => n is FlowNode): FlowNode | undefined {
  const seen = new Set<string>([start.id]);
  const queue = [start];
  while (queue.length) {
    const n = queue.shift()!;
    for (const out of n.wires ?? []) {
      for (const id of out) {
        const to = byId.get(id);
        if (!live(to) || seen.has(id)) continue;
        if (CADENCE_NODE_TYPES.has(to.type)) return to;
        seen.add(id);
        queue.push(to);
      }
    }
  }
  return undefined;
}
