// An n8n workflow (the export format, or the live Workflow's nodes and connections) -> canonical
// definitions, one per Cadence Trigger, and the routes that carry each due item through the graph the
// user drew. Pure: the CLI dry-runs an exported workflow with it; the n8n adapter compiles the same way.
import type { CadenceDefinition, CadenceNode, Edge } from '../types';
import { branchNode, branchPorts, checkNode, followUpNode, triggerSettings, type Params } from './params';

export const N8N_NAMES = {
  trigger: 'cadenceTrigger',
  followUp: 'followUpStep',
  branch: 'outcomeBranch',
  check: 'unenrollCheck',
} as const;

export interface N8nNode {
  id: string;
  name: string;
  type: string;
  parameters?: Params;
  disabled?: boolean;
}

export type N8nConnections = Record<string, { main?: ({ node: string; type?: string; index?: number }[] | null)[] }>;

export interface N8nWorkflow {
  id?: string;
  name?: string;
  nodes: N8nNode[];
  connections: N8nConnections;
}

/** The node's short name: "@scope/n8n-nodes-x.followUpStep" -> "followUpStep". */
const kind = (n: N8nNode) => n.type.slice(n.type.lastIndexOf('.') + 1);
const CADENCE = new Set<string>([N8N_NAMES.followUp, N8N_NAMES.branch, N8N_NAMES.check]);

export function isN8nWorkflow(v: unknown): v is N8nWorkflow {
  const w = v as N8nWorkflow;
  return !!w && typeof w === 'object' && Array.isArray(w.nodes) && typeof w.connections === 'object' && w.nodes.some((n) => n && typeof n.type === 'string' && kind(n) === N8N_NAMES.trigger);
}

/** Which output of a cadenza node continues the cadence under which port (output 1 of a step is the action). */
export function outputPorts(n: N8nNode): string[] {
  switch (kind(n)) {
    case N8N_NAMES.trigger:
      return ['out'];
    case N8N_NAMES.followUp:
      return ['action', 'out'];
    case N8N_NAMES.check:
      return ['out', 'left'];
    case N8N_NAMES.branch:
      return branchPorts(n.parameters ?? {});
    default:
      return [];
  }
}

export const cadenceIdOf = (workflowId: string | undefined, trigger: N8nNode) => `${workflowId || 'workflow'}:${trigger.id}`;

/** Compiles the graph reachable from one trigger (by node name). Disabled nodes end a path. */
export function compileN8nTrigger(wf: N8nWorkflow, triggerName: string): CadenceDefinition {
  const byName = new Map(wf.nodes.map((n) => [n.name, n]));
  const trigger = byName.get(triggerName);
  if (!trigger || kind(trigger) !== N8N_NAMES.trigger) throw new Error(`no Cadence Trigger named "${triggerName}" in the workflow`);
  const nodes: CadenceNode[] = [];
  const edges: Edge[] = [];
  const seen = new Set<string>();
  const queue: N8nNode[] = [trigger];
  while (queue.length) {
    const n = queue.shift()!;
    const outputs = wf.connections[n.name]?.main ?? [];
    outputPorts(n).forEach((port, i) => {
      if (port === 'action' || port === 'left') return;
      for (const c of outputs[i] ?? []) {
        const target = byName.get(c.node);
        if (!target || target.disabled || !CADENCE.has(kind(target))) continue;
        edges.push({ from: n === trigger ? 'trigger' : n.id, ...(port === 'out' ? {} : { port }), to: target.id });
        if (!seen.has(target.id)) {
          seen.add(target.id);
          const p = { ...target.parameters, name: target.name };
          nodes.push(kind(target) === N8N_NAMES.followUp ? followUpNode(target.id, p) : kind(target) === N8N_NAMES.branch ? branchNode(target.id, p) : checkNode(target.id, p));
          queue.push(target);
        }
      }
    });
  }
  const settings = triggerSettings({ ...trigger.parameters, name: trigger.parameters?.cadenceName || wf.name || trigger.name });
  return { id: cadenceIdOf(wf.id, trigger), ...settings, nodes, edges };
}

export function compileN8nWorkflow(wf: N8nWorkflow): CadenceDefinition[] {
  return wf.nodes.filter((n) => kind(n) === N8N_NAMES.trigger && !n.disabled).map((t) => compileN8nTrigger(wf, t.name));
}

/** The output each node on the way must use so an item reaches `target` and leaves it by `lastPort`. */
export function routeTo(def: CadenceDefinition, target: string, lastPort: 'action' | 'left'): Record<string, number> | null {
  const prev = new Map<string, Edge>();
  const queue = ['trigger'];
  const seen = new Set(queue);
  while (queue.length) {
    const at = queue.shift()!;
    for (const e of def.edges.filter((x) => x.from === at)) {
      if (seen.has(e.to)) continue;
      seen.add(e.to);
      prev.set(e.to, e);
      queue.push(e.to);
    }
  }
  if (!seen.has(target)) return null;
  const portsOf = (id: string): string[] => {
    const n = def.nodes.find((x) => x.id === id);
    if (!n) return [];
    if (n.type === 'followUp') return ['action', 'out'];
    if (n.type === 'unenrollCheck') return ['out', 'left'];
    return n.timeout ? [...n.outcomes, 'timeout'] : n.outcomes;
  };
  const route: Record<string, number> = { [target]: portsOf(target).indexOf(lastPort) };
  for (let e = prev.get(target); e && e.from !== 'trigger'; e = prev.get(e.from)) route[e.from] = portsOf(e.from).indexOf(e.port ?? 'out');
  return route;
}
