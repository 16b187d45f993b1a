// What every graph node (step, branch, check) does when items reach it: check its own parameters,
// then pass each item on by the output its route names. No cadence logic lives here.
import type { IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';
import { CadenzaError } from '../../../engine/model/errors';
import type { Params } from '../../../engine/model/formats/params';
import type { CadenceNode } from '../../../engine/model/types';
import { validateNode } from '../../../engine/model/validate';
import { toNodeError } from './errors';
import { routeItems } from './host';

export function executeGraphNode(ctx: IExecuteFunctions, toNode: (id: string, p: Params) => CadenceNode, outputs: (p: Params) => number): INodeExecutionData[][] {
  const node = ctx.getNode();
  const params = { ...node.parameters, name: node.name };
  const problems = validateNode(toNode(node.id, params));
  if (problems.length) throw toNodeError(node, new CadenzaError('invalid_node', problems[0].rule, `invalid ${node.type}`, problems));
  return routeItems(node.id, ctx.getInputData(), outputs(params)) as INodeExecutionData[][];
}
