// Where a follow-up reaches the record: the rules for an address good enough to hand to a performer (F9).
// The machine fails a step without one; the renderer addresses the message with the same answer, so the
// two can never disagree about which field was used.

const EMAIL = /^[^\s@<>()",;]+@[^\s@<>()",;]+\.[^\s@<>()",;]+$/;
// A phone as people type it: an optional +, digits, spaces, dots, dashes, parentheses. E.164 allows at
// most 15 digits; fewer than 7 is no reachable mobile anywhere.
const PHONE = /^\+?[0-9 ().-]{1,30}$/;

export function emailOf(data: Readonly<Record<string, unknown>>): string | undefined {
  return typeof data.Email === 'string' && EMAIL.test(data.Email) ? data.Email : undefined;
}

/** The record's WhatsApp number: `Mobile`, else `Phone` — the first that is a phone number (a CRM export may hold it as a number). */
export function phoneOf(data: Readonly<Record<string, unknown>>): string | undefined {
  for (const v of [data.Mobile, data.Phone]) {
    const s = typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? String(v) : typeof v === 'string' ? v.trim() : '';
    if (!PHONE.test(s)) continue;
    const digits = s.replace(/\D/g, '').length;
    if (digits >= 7 && digits <= 15) return s;
  }
  return undefined;
}
