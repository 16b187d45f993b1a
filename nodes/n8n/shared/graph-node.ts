// What every graph node (step, branch, check) does when items reach it: check its own parameters,
// then pass each item on by the output its route names. No cadence logic lives here.
import type { IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';
import { CadenzaError } from '../../../engine/model/errors';
import type { Params } from '../../../engine/model/formats/params';
import type { CadenceNode } from '../../../engine/model/types';
import { validateNode } from '../../../engine/model/validate';
import { toNodeError } from './errors';
import { engineServing, graphHash, routeItems } from './host';
import { liveDefinition, runsPublishedGraph, workflowOf } from './live-graph';

export async function executeGraphNode(ctx: IExecuteFunctions, toNode: (id: string, p: Params) => CadenceNode, outputs: (p: Params) => number): Promise<INodeExecutionData[][]> {
  const node = ctx.getNode();
  const params = { ...node.parameters, name: node.name };
  const problems = validateNode(toNode(node.id, params));
  if (problems.length) throw toNodeError(node, new CadenzaError('invalid_node', problems[0].rule, `invalid ${node.type}`, problems));
  const items = ctx.getInputData();
  if (runsPublishedGraph(ctx.getMode())) await redeployIfStale(ctx, items);
  return routeItems(node.id, items, outputs(params)) as INodeExecutionData[][];
}

/**
 * Items carry the hash of the graph their trigger deployed. When this execution runs a different
 * published graph, the cadence is deployed again from it (V1: a new version for new enrollments; V2:
 * enrollments waiting on an edited step stop), by the engine that serves the cadence in this process.
 */
async function redeployIfStale(ctx: IExecuteFunctions, items: INodeExecutionData[]): Promise<void> {
  const wf = workflowOf(ctx);
  if (!wf) return;
  const seen = new Set<string>();
  for (const item of items) {
    const c = item.json.cadenza as { cadenceId?: string; graph?: string } | undefined;
    if (!c?.cadenceId || !c.graph || seen.has(c.cadenceId)) continue;
    seen.add(c.cadenceId);
    const def = liveDefinition(wf, c.cadenceId);
    if (!def || graphHash(def) === c.graph) continue;
    try {
      await engineServing(c.cadenceId)?.refresh(def);
    } catch (err) {
      throw toNodeError(ctx.getNode(), err, def);
    }
  }
}
