// A Node-RED flow (the export format, or the live node configs) -> canonical definitions, one per
// Cadence Trigger. Wires are the definition: only wires between cadenza nodes count; the action output
// of a step and the "left" output of a check go to ordinary nodes and are not part of the graph.
// Pure: it reads JSON, so the CLI can dry-run an exported flow and the runtime adapter compiles the same way.
import { CadenzaError, type Problem } from '../errors';
import type { CadenceDefinition, CadenceNode, Edge } from '../types';
import { branchNode, branchPorts, checkNode, followUpNode, triggerSettings, type Params } from './params';

export const NODE_RED_TYPES = {
  trigger: 'cadenza-trigger',
  followUp: 'cadenza-followup',
  branch: 'cadenza-branch',
  check: 'cadenza-check',
} as const;

export interface FlowNode extends Params {
  id: string;
  type: string;
  z?: string;
  d?: boolean;
  wires?: string[][];
}

export const CADENCE_NODE_TYPES = new Set<string>([NODE_RED_TYPES.followUp, NODE_RED_TYPES.branch, NODE_RED_TYPES.check]);

export function isNodeRedFlow(v: unknown): v is FlowNode[] {
  return Array.isArray(v) && v.some((n) => typeof n === 'object' && n !== null && (n as FlowNode).type === NODE_RED_TYPES.trigger);
}

/** Which output of a cadenza node continues the cadence, and under which port name. */
export function graphOutputs(n: FlowNode): { port: string; targets: string[] }[] {
  const wires = n.wires ?? [];
  switch (n.type) {
    case NODE_RED_TYPES.trigger:
      return [{ port: 'out', targets: wires[0] ?? [] }];
    case NODE_RED_TYPES.followUp:
      return [{ port: 'out', targets: wires[1] ?? [] }]; // output 1 carries the due action
    case NODE_RED_TYPES.check:
      return [{ port: 'out', targets: wires[0] ?? [] }]; // output 2 reports records that leave
    case NODE_RED_TYPES.branch:
      return branchPorts(n).map((port, i) => ({ port, targets: wires[i] ?? [] }));
    default:
      return [];
  }
}

function toNode(n: FlowNode): CadenceNode {
  if (n.type === NODE_RED_TYPES.followUp) return followUpNode(n.id, n);
  if (n.type === NODE_RED_TYPES.branch) return branchNode(n.id, n);
  return checkNode(n.id, n);
}

/** Compiles the graph reachable from one trigger. Disabled nodes and tabs end a path. */
export function compileTrigger(flow: readonly FlowNode[], triggerId: string): CadenceDefinition {
  const byId = new Map(flow.map((n) => [n.id, n]));
  const disabledTabs = new Set(flow.filter((n) => n.type === 'tab' && n.disabled === true).map((n) => n.id));
  const live = (n: FlowNode | undefined): n is FlowNode => !!n && !n.d && !(n.z && disabledTabs.has(n.z));
  const trigger = byId.get(triggerId);
  if (!trigger || trigger.type !== NODE_RED_TYPES.trigger) throw new Error(`no Cadence Trigger "${triggerId}" in the flow`);
  const nodes: CadenceNode[] = [];
  const edges: Edge[] = [];
  const seen = new Set<string>();
  const queue: FlowNode[] = [trigger];
  const miswired: Problem[] = [];
  while (queue.length) {
    const n = queue.shift()!;
    // A branch's outputs are its outcomes (and timeout) in order. A flow whose wires do not match them
    // (edited by hand, imported from an older version) would send each wire to another outcome in silence.
    const ports = n.type === NODE_RED_TYPES.branch ? branchPorts(n) : null;
    if (ports && n.wires && n.wires.length !== ports.length) {
      miswired.push({ rule: 'C6', field: 'wires', node: n.id, message: `the branch has ${n.wires.length} wired outputs but ${ports.length} outcomes (${ports.join(', ')}): open it, check its outcomes and wire each output again` });
      continue;
    }
    for (const { port, targets } of graphOutputs(n)) {
      for (const to of targets) {
        const target = byId.get(to);
        if (!live(target) || !CADENCE_NODE_TYPES.has(target.type)) continue;
        edges.push({ from: n === trigger ? 'trigger' : n.id, ...(port === 'out' ? {} : { port }), to });
        if (!seen.has(to)) {
          seen.add(to);
          nodes.push(toNode(target));
          queue.push(target);
        }
      }
    }
  }
  if (miswired.length) throw new CadenzaError('invalid_definition', 'C6', 'a branch\'s wires do not match its outcomes', miswired);
  return { id: trigger.id, ...triggerSettings(trigger), nodes, edges };
}

/** Every enabled trigger of a flow export, compiled. */
export function compileNodeRedFlow(flow: readonly FlowNode[]): CadenceDefinition[] {
  const disabledTabs = new Set(flow.filter((n) => n.type === 'tab' && n.disabled === true).map((n) => n.id));
  return flow
    .filter((n) => n.type === NODE_RED_TYPES.trigger && !n.d && !(n.z && disabledTabs.has(n.z)))
    .map((t) => compileTrigger(flow, t.id));
}
