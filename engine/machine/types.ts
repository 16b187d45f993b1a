import type { CadenceDefinition, Channel, FatigueLimit } from '../model/types';

export type Status = 'active' | 'completed' | 'stopped' | 'failed';

/**
 * What an active enrollment waits for at its position: a due follow-up, an outcome at a branch,
 * the completion of the previous task or call (F1), its performer's confirmation that the follow-up
 * at its position was delivered (D5), or nothing because its cadence is inactive (V3).
 */
export type Wait = 'due' | 'outcome' | 'completion' | 'delivery' | 'halted' | null;

/**
 * A follow-up action's delivery (D5): queued (in the outbox: pending, or handed off and not yet
 * confirmed), then delivered, failed (permanently, D6) or cancelled (un-enrolled before hand-off).
 * Whether a queued action was handed off is the outbox's to know: a cancel never takes one that was.
 */
export type Delivery = 'queued' | 'delivered' | 'failed' | 'cancelled';

export interface LastFollowUp {
  nodeId: string;
  key: string;
  channel: Channel;
  at: number;
  completedAt: number | null;
  outcomes: string[];
  /** Absent in states written before D5: those were counted as delivered when queued. */
  delivery?: Delivery;
  deliveredAt?: number | null;
}

/** One record's run through one cadence (E5). `dueAt` is the enrollment's only timer. */
export interface Enrollment {
  id: string;
  cadenceId: string;
  version: number;
  recordId: string;
  module: string;
  status: Status;
  /** Run number: 1, then +1 per re-enrollment; part of every idempotency key. */
  run: number;
  position: string | null;
  wait: Wait;
  dueAt: number | null;
  startedAt: number;
  /** What delays "from the enrollment" count from when not `startedAt`: the moment of a resume (R1). */
  anchorAt?: number;
  /** When the last outcome branch chose this path (the outcome recorded, or its timeout fired): F14's anchor. */
  outcomeAt?: number;
  enrolledBy: string;
  reason: string;
  updatedAt: number;
  last: LastFollowUp | null;
  /** Un-enroll check nodes passed on this path; their criteria apply from then on (U3). */
  exitChecks: string[];
  /** Follow-ups executed (delivered, D5) in this enrollment, all runs. */
  executed: number;
  /** The latest email of this run handed to its performer: a reply matched by its sender answers it, even once a call or task came after (U1). */
  lastEmail?: { key: string; at: number };
  /** F13: the due follow-up waits because a contact limit held it (the report's `heldByFatigue`). */
  heldBy?: 'F13';
}

export interface RecordSnapshot {
  id: string;
  module: string;
  data: Record<string, unknown>;
  unsubscribed: boolean;
}

/** Criteria results for the record at this event, computed by the runtime (JSONata is async). */
export interface CriteriaResults {
  view?: boolean;
  exit?: boolean;
  checks: Record<string, boolean>;
  /** Expressions that could not be decided for this record (an error, a time-out): never read as "no match". */
  errors?: { field: string; kind: string; message: string }[];
}

export interface Context {
  now: number;
  /** The version the enrollment runs on (for enroll/re-enroll: the published one). */
  def: CadenceDefinition;
  record: RecordSnapshot | null;
  criteria: CriteriaResults;
  /** Default zone when neither record nor cadence names one. */
  timezone: string;
  /** Email template ids that exist now (F9). */
  templates: ReadonlySet<string>;
  /** WhatsApp templates approved now (C4, F9); absent when no list is configured, and then any id goes. */
  whatsappTemplates?: ReadonlySet<string>;
  defaultSender: string;
  /** Emails already sent today by the sender of the due follow-up, keyed `${sender}|${localDate}` (F12). */
  sentToday: Readonly<Record<string, number>>;
  /** F13: the engine's contact limits (a cadence may be exempt or add its own). */
  fatigue?: readonly FatigueLimit[];
  /** F13: messages sent to the record per channel and local day, keyed `${recordId}|${channel}|${localDate}`. */
  sentToContact?: Readonly<Record<string, number>>;
  /** Actions the cadence may still perform (C5); Infinity when unlimited. */
  actionsLeft: number;
}

export type MachineEvent =
  | { type: 'enroll'; id: string; version: number; by: string; startAt?: number }
  | { type: 'reenroll'; mode: 'resume' | 'restart'; version: number; by: string }
  | { type: 'timer' }
  | { type: 'outcome'; key: string; outcome: string; by?: string }
  | { type: 'recordChanged' }
  | { type: 'converted' }
  | { type: 'unenroll'; by: string; reason: string }
  | { type: 'deactivated'; by: string }
  | { type: 'activated'; by: string }
  | { type: 'published'; next: CadenceDefinition; version: number; by: string }
  /** The performer confirmed the action (D5). */
  | { type: 'delivered'; key: string }
  /** The action can never be delivered, or its performer failed for longer than the hold time (D6, F9). */
  | { type: 'deliveryFailed'; key: string; reason: string }
  /**
   * A hand-off failed transiently and the delivery policy would hand it over again at `retryAt` (D6):
   * the machine says whether the enrollment still wants it (not after an un-enrollment, U8, or, for an
   * email, an unsubscribe, F8).
   */
  | { type: 'handOffFailed'; key: string; retryAt: number; error: string; reason: string; attempt: number }
  /** F8: the store took back this queued email, which no hand-off had in flight (its record unsubscribed). */
  | { type: 'emailWithdrawn'; key: string }
  /** Re-runs just the failed step of a failed enrollment, under the same key (D6). */
  | { type: 'retry'; by: string };

export interface ActionRef {
  /** Idempotency key: enrollment, run and follow-up; the same key is never dispatched for another action (D2). */
  key: string;
  enrollmentId: string;
  cadenceId: string;
  version: number;
  recordId: string;
  nodeId: string;
  channel: Channel;
}

export type Effect =
  | { type: 'dispatch'; action: ActionRef }
  /** The enrollment's one timer: due at `at`, or none. Returned whenever it changes or has fired. */
  | { type: 'timer'; at: number | null }
  /** Drop a queued action unless it was already handed off (U8, V3, D5). */
  | { type: 'cancel'; key: string }
  /** The action's outbox entry is finished: delivered (`done`) or given up (`dead`). */
  | { type: 'settle'; key: string; status: 'done' | 'dead' }
  /** Hand the (dead) action over again, same key and content (D6 retry). */
  | { type: 'requeue'; key: string }
  /** Hand the (pending) action over again at `at`, after a failed hand-off; `error` is what failed (D6). */
  | { type: 'retryLater'; key: string; at: number; error: string }
  | { type: 'log'; event: string; reason: string; data?: Record<string, unknown> }
  | { type: 'left'; nodeId: string }
  | { type: 'reject'; rule: string; reason: string };

export interface Step {
  next: Enrollment | null;
  effects: Effect[];
}
