import type { Channel } from './types';

/** Outcomes each channel can report (SPEC vocabulary). */
export const OUTCOMES: Record<Channel, readonly string[]> = {
  email: ['opened', 'clicked', 'replied', 'auto-replied', 'bounced'],
  call: ['completed', 'busy', 'no-answer', 'invalid-number'],
  task: ['completed'],
  whatsapp: ['delivered', 'read', 'replied', 'failed'],
};

export const ALL_OUTCOMES: readonly string[] = [...new Set(Object.values(OUTCOMES).flat())];

/** Outcomes that complete a task or call, for delays relative to the previous follow-up (F1). */
export function completesFollowUp(channel: Channel, outcome: string): boolean {
  if (channel === 'task') return outcome === 'completed';
  if (channel === 'call') return outcome !== 'invalid-number';
  return true;
}

/** Modules known to the CRM vocabulary; anything else is a custom module (C4). */
export const STANDARD_MODULES = ['Leads', 'Contacts', 'Deals', 'Accounts', 'Vendors', 'Quotes', 'Assets'] as const;

export interface InboundMessage {
  subject?: string;
  headers?: Record<string, string | string[] | undefined>;
}

const AUTO_SUBJECT = /^\s*(auto(matic)?[ -]?(reply|response)|out of (the )?office|ooo\b|abwesenheitsnotiz|r[ée]ponse automatique|absence|away from (the )?office|vacation|on leave|delivery status notification|undeliverable)/i;

/**
 * U10: an automatic reply is recorded as `auto-replied`, never `replied`.
 * Header names are matched case-insensitively, as mail headers are.
 */
export function isAutoReply(message: InboundMessage): boolean {
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(message.headers ?? {})) {
    if (v !== undefined) headers.set(k.toLowerCase(), (Array.isArray(v) ? v.join(',') : v).toLowerCase());
  }
  const autoSubmitted = headers.get('auto-submitted');
  if (autoSubmitted && autoSubmitted.trim() !== 'no') return true;
  if (headers.has('x-autoreply') || headers.has('x-autorespond') || headers.has('x-autoresponse')) return true;
  const precedence = headers.get('precedence');
  if (precedence && /auto_reply|bulk|junk/.test(precedence)) return true;
  if (headers.get('x-auto-response-suppress')?.match(/all|oof|autoreply/)) return true;
  return AUTO_SUBJECT.test(message.subject ?? '');
}

/** Turns a reply into its outcome: `replied` or, for automatic ones, `auto-replied` (U10). */
export function classifyReply(message: InboundMessage): 'replied' | 'auto-replied' {
  return isAutoReply(message) ? 'auto-replied' : 'replied';
}
