// The runtime's vocabulary, shared by the facade (runtime.ts) and the parts behind it: what a host
// configures, receives and is told, and what the use cases answer.
import type { ActionRef, Effect, Enrollment } from '../machine/types';
import type { CadenzaError } from '../model/errors';
import type { FatigueSettings, Template } from '../model/types';
import type { ActivityPayload, EmailPayload, WhatsAppPayload } from '../render/render';
import type { Store } from '../store/store';
import type { Clock } from './clock';
import type { LimitSettings } from './limits';

export interface RuntimeOptions {
  store: Store;
  clock?: Clock;
  /** Default zone for cadences and records that name none. */
  timezone?: string;
  defaultSender?: string;
  /** Signs unsubscribe and tracking links. Without one, a random secret is generated once and kept in the store. */
  secret?: string;
  /** Public base URL for links in emails. */
  baseUrl?: string;
  templates?: Record<string, Template>;
  whatsappTemplates?: string[];
  users?: Record<string, { name?: string; email?: string; signature?: string }>;
  limits?: LimitSettings;
  /** F13: contact limits across all cadences, e.g. `[{ channel: 'email', max: 3, days: 7 }]`; a cadence may be exempt or add stricter ones. */
  fatigue?: FatigueSettings;
  /** D6: backoff (first wait, longest wait) and how long a failing performer's actions are held before the step fails. */
  retry?: { baseMs?: number; maxMs?: number; holdMs?: number; jitter?: number };
  /** Hand-offs in flight at once (default 16). */
  concurrency?: number;
  /** A hand-off not confirmed within this time counts as a transient failure (default 30 s). */
  handOffTimeoutMs?: number;
  /** How long stop() waits for hand-offs in flight (default 5 s); the rest are handed over again when their lease ends. */
  stopGraceMs?: number;
  batchSize?: number;
  /** How long a claim of due work (an enrollment a batch left, a cadence timer) is held (default 60 s). */
  leaseMs?: number;
  /**
   * How long a handed-off action is leased to this process (default `leaseMs`): another process, or
   * this one after a restart, hands it over again only after it ends. At least twice the hand-off
   * time limit, so a hand-off can time out inside its lease.
   */
  handOffLeaseMs?: number;
  /** How often time-dependent views and criteria are re-evaluated (E7). */
  recheckMs?: number;
  maxRecordBytes?: number;
  /**
   * D4: how long (wall time, ms) publishing may spend running the view and criteria over the module's
   * stored records (default 3000); past it the publish goes on with a warning saying how many it checked.
   */
  publishCheckMs?: number;
}

/** What a host receives for a due follow-up: the action, the record, and the rendered content. */
export interface DispatchedAction extends ActionRef {
  /** The key for the host's side (D2): ASCII and safe in an HTTP header whatever the record id. */
  idempotencyKey: string;
  module: string;
  attempt: number;
  record: Record<string, unknown>;
  email?: EmailPayload;
  activity?: ActivityPayload;
  whatsapp?: WhatsAppPayload;
}

/**
 * Performs one action. Resolving means delivered (D5); throwing (or not settling within the hand-off
 * time limit) is a transient failure retried under the same key, unless the error is a CannotRunError
 * or carries `permanent: true` (D6).
 */
export type DispatchHandler = (action: DispatchedAction) => Promise<void> | void;
/** Hands a whole claimed batch to the host at once (one n8n execution for many due items). */
export type BatchDispatchHandler = (actions: DispatchedAction[]) => Promise<void> | void;

/** Limits a scheduler pass to the cadences a host serves. */
export interface TickScope {
  cadences?: readonly string[];
}

export interface EnrollAnswer {
  recordId: string;
  /** The cadence this answer is about (set where one call may answer for several, e.g. a record update). */
  cadenceId?: string;
  status: 'enrolled' | 'skipped';
  reason?: string;
  rule?: string;
  enrollmentId?: string;
  startAt?: number;
}

export interface RuntimeEvent {
  type: 'changed' | 'left' | 'dispatched' | 'dispatchFailed' | 'error';
  enrollment?: Enrollment;
  nodeId?: string;
  key?: string;
  error?: string;
}

export interface DeployResult {
  action: 'created' | 'published' | 'activated' | 'unchanged';
  version: number;
  stopped: number;
  enrolled: number;
  /** What the publish check found that does not refuse the publish (a view every record matches, …). */
  warnings?: string[];
}

/** What one record of `upsertRecords` came to: the cadences it entered or was refused by, or why it was refused (D4). */
export type UpsertAnswer = { recordId: string; enrollments: EnrollAnswer[] } | { recordId: string; error: CadenzaError };

/** What one step of one enrollment came to: the state after it (null: none) and the machine's effects. */
export interface StepResult {
  state: Enrollment | null;
  effects: Effect[];
}
