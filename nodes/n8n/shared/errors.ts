import type { INode } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';
import { CadenzaError, type Problem } from '../../../engine/model/errors';
import type { CadenceDefinition } from '../../../engine/model/types';

/** A problem as an n8n user reads it: node names instead of ids, and the parameter it is about. */
export function describeProblem(p: Problem, def?: CadenceDefinition, self?: INode): string {
  const name = p.node ? (p.node === self?.id ? self.name : (def?.nodes.find((n) => n.id === p.node)?.name ?? p.node)) : undefined;
  return `${p.rule} ${name ? `"${name}" ` : ''}parameter "${p.field}": ${p.message}`;
}

/** Turns an engine refusal into the NodeOperationError n8n shows, naming every parameter at fault. */
export function toNodeError(node: INode, err: unknown, def?: CadenceDefinition): NodeOperationError {
  if (err instanceof CadenzaError) {
    const lines = err.problems.map((p) => describeProblem(p, def, node));
    return new NodeOperationError(node, lines[0] ?? `${err.rule}: ${err.message}`, { description: lines.length > 1 ? lines.join('\n') : undefined });
  }
  return new NodeOperationError(node, err instanceof Error ? err : new Error(String(err)));
}
