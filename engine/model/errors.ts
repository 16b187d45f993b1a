/** One problem found in an input, naming where it is and which SPEC rule it breaks. */
export interface Problem {
  rule: string;
  field: string;
  message: string;
  node?: string;
}

export function formatProblem(p: Problem): string {
  return `${p.rule} ${p.node ? `node "${p.node}" ` : ''}${p.field}: ${p.message}`;
}

/**
 * Every refusal the engine gives: a stable code for programs, the rule for people, and the list
 * of problems when an input had several. Thrown before any stored state changes (D4).
 */
export class CadenzaError extends Error {
  readonly code: string;
  readonly rule: string;
  readonly problems: Problem[];

  constructor(code: string, rule: string, message: string, problems: Problem[] = []) {
    super(problems.length ? `${message}\n${problems.map((p) => '  - ' + formatProblem(p)).join('\n')}` : message);
    this.name = 'CadenzaError';
    this.code = code;
    this.rule = rule;
    this.problems = problems;
  }
}
