// What to do about a problem, in the words of the editors (both hosts show the same advice). The
// rule text says what is wrong; this says where to click. Keyed by rule and field, most specific first.
import { formatProblem, type Problem } from '../model/errors';

const HINTS: [rule: string, field: RegExp, hint: string][] = [
  ['C5', /^nodes$/, "Wire the trigger's output straight to a Follow-up Step."],
  ['C6', /^edges$/, 'Check the wires: every cadence node needs exactly one way in from the trigger.'],
  ['C4', /^channel$/, 'Pick another channel, or change the trigger\'s module.'],
  ['C4', /^templateId$/, 'Set the WhatsApp template to a pre-approved one.'],
  ['F6', /^templateId$/, 'Write the email in Subject and Body; a template id is for WhatsApp steps.'],
  ['F6', /^template/, 'Fill in the Subject and Body.'],
  ['F6', /^sender$/, 'Leave Sender empty for the engine default, or give an address like sales@example.com.'],
  ['F2', /^edges$/, 'Wire the branch from the Next output of exactly one Follow-up Step.'],
  ['C6', /^outcomes$/, 'Choose outcomes the step before the branch can report.'],
  ['E2', /^enrollment\.view$/, 'Write the view as a JSONata expression, e.g. Lead_Status = "Sales-Ready".'],
  ['U3', /criteria$/, 'Write the criteria as a JSONata expression, e.g. Stage in ["Closed Won", "Closed Lost"].'],
  ['F11', /^sendWindow/, 'Times are HH:mm, 24-hour, and the start comes before the end.'],
  ['F11', /^timezone$/, 'Use an IANA zone such as Europe/London, or leave it empty for the engine default.'],
];

export function hintFor(p: Problem): string | undefined {
  return HINTS.find(([rule, field]) => rule === p.rule && field.test(p.field))?.[2];
}

/** The whole problem, rule first, then what to do: never cut short (the editor shows it in full). */
export function explain(p: Problem): string {
  const hint = hintFor(p);
  return `${formatProblem({ ...p, node: undefined })}${hint ? ` — ${hint}` : ''}`;
}
