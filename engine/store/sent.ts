// What a delivered action's outbox row no longer needs, for both stores (their SENT_SUMMARY): the
// bodies and the record copy (the bulk of a row: a reply or an open is matched by the key, never by
// the text), and the ids the row's own columns hold already. What stays says what was sent to whom:
// key, idempotency key, channel, version, and the envelope (to, from, subject, Message-ID) or the task.
export const SENT_DROPPED: readonly (readonly string[])[] = [
  ['record'], ['enrollmentId'], ['cadenceId'], ['recordId'], ['nodeId'], ['module'], ['attempt'],
  ['email', 'html'], ['email', 'text'], ['email', 'headers'], ['email', 'unsubscribeUrl'],
  ['activity', 'description'], ['whatsapp', 'params'],
];
