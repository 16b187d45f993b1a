import type { CadenceDefinition, Channel } from '../model/types';

export type Status = 'active' | 'completed' | 'stopped' | 'failed';

/**
 * What an active enrollment waits for at its position: a due follow-up, an outcome at a branch,
 * the completion of the previous task or call (F1), or nothing because its cadence is inactive (V3).
 */
export type Wait = 'due' | 'outcome' | 'completion' | 'halted' | null;

export interface LastFollowUp {
  nodeId: string;
  key: string;
  channel: Channel;
  at: number;
  completedAt: number | null;
  outcomes: string[];
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
  enrolledBy: string;
  reason: string;
  updatedAt: number;
  last: LastFollowUp | null;
  /** Un-enroll check nodes passed on this path; their criteria apply from then on (U3). */
  exitChecks: string[];
  /** Follow-ups executed in this enrollment, all runs. */
  executed: number;
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
}

export interface Context {
  now: number;
  /** The version the enrollment runs on (for enroll/re-enroll: the published one). */
  def: CadenceDefinition;
  record: RecordSnapshot | null;
  criteria: CriteriaResults;
  /** Default zone when neither record nor cadence names one. */
  timezone: string;
  /** Template ids that exist now (F9). */
  templates: ReadonlySet<string>;
  defaultSender: string;
  /** Emails already sent today by the sender of the due follow-up, keyed `${sender}|${localDate}` (F12). */
  sentToday: Readonly<Record<string, number>>;
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
  | { type: 'cannotRun'; key: string; reason: string };

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
  | { type: 'log'; event: string; reason: string; data?: Record<string, unknown> }
  | { type: 'left'; nodeId: string }
  | { type: 'reject'; rule: string; reason: string };

export interface Step {
  next: Enrollment | null;
  effects: Effect[];
}
