// The graph an n8n execution runs. n8n-core's contexts carry their Workflow (verified on n8n-core
// 2.41): a trigger reads it to compile its cadence, and nodes of an execution read it to notice that
// the workflow was published again without its trigger being re-registered (n8n 2.41 re-registers a
// trigger only when the trigger's own parameters change).
import type { INode } from 'n8n-workflow';
import { cadenceIdOf, compileN8nTrigger, N8N_NAMES, type N8nConnections } from '../../../engine/model/formats/n8n';
import type { CadenceDefinition } from '../../../engine/model/types';

export interface LiveWorkflow {
  id?: string;
  name?: string;
  nodes: Record<string, INode>;
  connectionsBySourceNode: N8nConnections;
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
