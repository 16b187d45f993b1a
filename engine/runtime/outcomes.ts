// Outcomes (F2, F3, F5, U1, U10, U11, D3): what came of a follow-up, by its idempotency key or, for a
// reply by mail, by the Message-ID it answers or its sender. An outcome is one machine event; a reply
// may take the sender's colleagues out too (U11).
import { companyOf } from '../model/company';
import type { Enrollment } from '../machine/types';
import { CadenzaError } from '../model/errors';
import { classifyReply, OUTCOMES, type InboundMessage } from '../model/outcomes';
import { keyFromMessageIds } from '../render/render';
import type { Core } from './core';
import { engineKey } from './keys';
import { actorId, AUTOMATION, requirePermission, type Actor } from './permissions';
import { apply } from './step';

/**
 * Records a response to a dispatched follow-up, by its idempotency key. A reply message, when given,
 * is classified first, so an out-of-office becomes `auto-replied` (U10).
 */
export async function recordOutcome(core: Core, input: { key: string; outcome: string; message?: InboundMessage }, actor: Actor = AUTOMATION): Promise<{ outcome: string; applied: boolean }> {
  requirePermission(actor, 'enroll'); // an outcome moves enrollments along their paths
  if (!input || typeof input.key !== 'string') throw new CadenzaError('invalid_outcome', 'D4', 'outcome.key must be the action\'s idempotency key');
  input = { ...input, key: engineKey(input.key) };
  const sent = await core.store.getOutbox(input.key);
  if (!sent) throw new CadenzaError('unknown_action', 'D4', `no dispatched action has key "${input.key}"`);
  const allowed = OUTCOMES[sent.channel as keyof typeof OUTCOMES] ?? [];
  let outcome = input.outcome;
  if (outcome === 'replied' && input.message) outcome = classifyReply(input.message);
  if (!allowed.includes(outcome)) throw new CadenzaError('invalid_outcome', 'D4', `"${outcome}" is not an outcome of a ${sent.channel} follow-up (${allowed.join(', ')})`);
  // An outcome counts once per action and kind: a repeated open records nothing more. Unless the first
  // was stored and never reached its enrollment (a crash in between): then this one carries it.
  if (!(await core.store.addOutcome(input.key, sent.cadenceId, sent.nodeId, outcome, core.clock.now()))) {
    const e = (await core.store.getEnrollment(sent.enrollmentId))?.enrollment;
    if (!e || e.last?.key !== input.key || e.last.outcomes.includes(outcome)) return { outcome, applied: false };
  }
  const r = await apply(core, sent.enrollmentId, { type: 'outcome', key: input.key, outcome, by: actorId(actor) }, actor);
  const applied = !r.effects.some((f) => f.type === 'log' && f.event === 'outcomeIgnored');
  if (outcome === 'replied' && r.state) await colleaguesReplied(core, r.state, actor);
  return { outcome, applied };
}

/**
 * A reply as it arrives by mail: its In-Reply-To/References lead to the follow-up it answers
 * (our Message-IDs carry the signed key); automatic replies become `auto-replied` (U10).
 */
export async function recordReply(core: Core, message: InboundMessage & { inReplyTo?: unknown; references?: unknown; from?: string }, actor: Actor = AUTOMATION): Promise<{ key: string; outcome: string; applied: boolean } | null> {
  // Checked before matching: whether a reply matches must not tell a view-only key who is enrolled (P2).
  requirePermission(actor, 'enroll');
  const h = Object.fromEntries(Object.entries(message?.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  let key = keyFromMessageIds([message?.inReplyTo, message?.references, h['in-reply-to'], h.references].flat(), core.opts.secret);
  // No Message-ID of ours: match by the sender's address to the latest email of an active enrollment.
  if (!key) key = await keyBySender(core, message?.from ?? (h.from as string | undefined));
  if (!key || !(await core.store.getOutbox(key))) return null;
  return { key, ...(await recordOutcome(core, { key, outcome: 'replied', message }, actor)) };
}

async function keyBySender(core: Core, from: unknown): Promise<string | null> {
  const address = typeof from === 'string' ? /<?([^<>\s]+@[^<>\s]+)>?\s*$/.exec(from)?.[1] : undefined;
  if (!address) return null;
  // The latest email of the record's active enrollments, even when a call or task came after it (U1).
  let best: { key: string; at: number } | undefined;
  for (const rec of await core.store.findRecordsByEmail(address)) {
    for (const { enrollment: e } of await core.store.listEnrollments({ recordId: rec.id, status: 'active' })) {
      const email = e.last?.channel === 'email' ? { key: e.last.key, at: e.last.at } : e.lastEmail;
      if (email && (!best || email.at > best.at)) best = email;
    }
  }
  return best?.key ?? null;
}

/** U11: a reply from one person un-enrolls everyone from the same company in the cadence. */
async function colleaguesReplied(core: Core, e: Enrollment, actor: Actor): Promise<void> {
  const def = await core.definition(e.cadenceId, e.version);
  if (!def.unenroll?.companyReply) return;
  const rec = await core.store.getRecord(e.module, e.recordId);
  // U11: the account first, else the email domain — never a free-mail or ISP domain (model/company.ts).
  const company = rec && companyOf(rec.data);
  if (!company) return;
  await core.eachEnrollment(e.cadenceId, 'active', async (other) => {
    if (other.enrollment.id === e.id) return;
    const r = await core.store.getRecord(other.enrollment.module, other.enrollment.recordId);
    if (r && companyOf(r.data) === company) await apply(core, other.enrollment.id, { type: 'unenroll', by: AUTOMATION, reason: `${rec!.id} from the same company replied (U11)` }, actor);
  });
}


