// The graph an n8n execution runs. n8n-core's contexts carry their Workflow (verified on n8n-core
// 2.41): a trigger reads it to compile its cadence, and nodes of an execution read it to notice that
// the workflow was published again without its trigger being re-registered (n8n 2.41 re-registers a
// trigger only when the trigger's own parameters change).
import type { INode } from 'n8n-workflow';
import { cadenceIdOf, compileN8nTrigger, N8N_NAMES, outputPorts, type N8nConnections } from '../../../engine/model/formats/n8n';
import type { CadenceDefinition } from '../../../engine/model/types';

export interface LiveWorkflow {
  id?: string;
  name?: string;
  nodes: Record<string, INode>;
  connectionsBySourceNode: N8nConnections;
  settings?: { engineType?: string };
}

/** The Workflow an n8n-core context carries, or undefined on a host that does not give it. */
export function workflowOf(ctx: unknown): LiveWorkflow | undefined {
  const wf = (ctx as { workflow?: LiveWorkflow }).workflow;
  return wf?.nodes && wf.connectionsBySourceNode ? wf : undefined;
}

export const isTrigger = (n: INode) => n.type.endsWith(`.${N8N_NAMES.trigger}`);

/** The cadence one Cadence Trigger of the workflow publishes. */
export function compileLive(wf: LiveWorkflow, triggerName: string): CadenceDefinition {
  return compileN8nTrigger({ id: wf.id, name: wf.name, nodes: Object.values(wf.nodes), connections: wf.connectionsBySourceNode }, triggerName);
}

/** The workflow's cadence with this id, compiled from the graph the execution runs; undefined when it has no such trigger. */
export function liveDefinition(wf: LiveWorkflow, cadenceId: string): CadenceDefinition | undefined {
  const trigger = Object.values(wf.nodes).find((n) => isTrigger(n) && !n.disabled && cadenceIdOf(wf.id, n) === cadenceId);
  return trigger ? compileLive(wf, trigger.name) : undefined;
}

/**
 * Executions started by the workflow's production side run the published graph; an editor's manual run
 * runs the unsaved draft, which must never be published from here.
 */
export const runsPublishedGraph = (mode: string) => mode !== 'manual' && mode !== 'evaluation';

const CADENCE_NODES = new Set<string>([N8N_NAMES.followUp, N8N_NAMES.branch, N8N_NAMES.check]);
const kindOf = (n: INode) => n.type.slice(n.type.lastIndexOf('.') + 1);
const OUTPUT_LABEL: Record<string, string> = { out: 'Next Step', action: 'Action', left: 'Left' };

/**
 * C6: wiring mistakes the compiler would otherwise pass over in silence (the steps after them would
 * never run): an ordinary node between cadence nodes, or a performer and the next step swapped
 * between a step's Action and Next Step outputs. Each message names the nodes and what to do.
 */
export function wiringProblems(wf: LiveWorkflow, triggerName: string): string[] {
  const byName = new Map(Object.values(wf.nodes).map((n) => [n.name, n]));
  const problems: string[] = [];
  const seen = new Set<string>([triggerName]);
  const queue = [triggerName];
  while (queue.length) {
    const from = byName.get(queue.shift()!)!;
    for (const field of expressionFields(from.parameters)) {
      problems.push(`D4 "${from.name}" field "${field}" is an n8n expression: a cadence is published as drawn, so its fields are read as written and never evaluated (the lead would get the text "=…"). Write merge fields such as {{First_Name}} in a subject or body, and fixed values elsewhere (F6)`);
    }
    const ports = outputPorts({ id: from.id, name: from.name, type: from.type, parameters: from.parameters as Record<string, unknown> });
    (wf.connectionsBySourceNode[from.name]?.main ?? []).forEach((targets, i) => {
      const port = ports[i];
      for (const c of targets ?? []) {
        const to = byName.get(c.node);
        if (!to || to.disabled) continue;
        const cadenceNode = CADENCE_NODES.has(kindOf(to));
        const label = OUTPUT_LABEL[port] ?? `"${port}"`;
        if ((port === 'action' || port === 'left') && cadenceNode) {
          problems.push(`C6 the ${label} output of "${from.name}" leads to the cadence node "${to.name}": ${port === 'action' ? 'Action carries due items to the node that performs them (Send Email, a CRM…)' : 'Left brings the records that leave'}; wire "${to.name}" to the Next Step output instead`);
        } else if (port !== 'action' && port !== 'left' && !cadenceNode) {
          problems.push(`C6 "${to.name}" is wired to the ${label} output of "${from.name}", where only cadence nodes go: nothing reaches it, and no step after it runs. Wire performers to a step's Action output, and put a wait in the next step's Delay field instead of a node between steps`);
        } else if (cadenceNode && !seen.has(to.name)) {
          seen.add(to.name);
          queue.push(to.name);
        }
      }
    });
  }
  return problems;
}

/** Parameters (by path) whose value is an n8n expression ("={{ … }}"), which cadence nodes never evaluate. */
function expressionFields(params: unknown, path = ''): string[] {
  if (typeof params === 'string') return params.startsWith('=') ? [path] : [];
  if (Array.isArray(params)) return params.flatMap((v, i) => expressionFields(v, `${path}[${i}]`));
  if (params && typeof params === 'object') return Object.entries(params).flatMap(([k, v]) => expressionFields(v, path ? `${path}.${k}` : k));
  return [];
}
