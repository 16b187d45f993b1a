// How one step's outbox changes are written on SQLite (the machine's cancel / settle / requeue / retry
// effects, as data): each a guarded UPDATE, so a change that no longer applies changes nothing.
import type { StatementSync } from 'node:sqlite';
import { SENT_DROPPED } from '../sent';
import type { OutboxChange } from '../store';

/**
 * A delivered action keeps what says what was sent (key, channel, version; to, from, subject,
 * Message-ID), not its bodies, the record copy, or the ids its row's columns hold already: nothing
 * reads them after the hand-off, and they were most of a row's bytes (store/sent.ts, shared with PostgreSQL).
 */
const SENT_SUMMARY = `json_remove(payload, ${SENT_DROPPED.map((path) => `'$.${path.join('.')}'`).join(', ')})`;

/** Takes back a pending action no hand-off has in flight: never handed off, or its lease is over (U8, F8). */
export const CANCEL_IDLE = "UPDATE outbox SET status = 'cancelled' WHERE key = ? AND status = 'pending' AND (attempts = 0 OR locked_until <= ?)";

export function applyOutboxChanges(q: (sql: string) => StatementSync, changes: readonly OutboxChange[], at: number): void {
  for (const ch of changes) {
    if (ch.op === 'cancel') q(CANCEL_IDLE).run(ch.key, at);
    else if (ch.op === 'retry') q("UPDATE outbox SET available_at = ?, locked_until = 0, last_error = ? WHERE key = ? AND status = 'pending'").run(ch.at, ch.error, ch.key);
    else if (ch.op === 'done') q(`UPDATE outbox SET status = 'done', done_at = ?, locked_until = 0, last_error = NULL, payload = ${SENT_SUMMARY} WHERE key = ? AND status IN ('pending', 'dead')`).run(at, ch.key);
    else if (ch.op === 'dead') q("UPDATE outbox SET status = 'dead', done_at = ?, locked_until = 0 WHERE key = ? AND status = 'pending'").run(at, ch.key);
    else q("UPDATE outbox SET status = 'pending', attempts = 0, available_at = ?, locked_until = 0, created_at = ?, done_at = NULL WHERE key = ? AND status = 'dead'").run(at, at, ch.key);
  }
}
