// The canonical cadence definition: plain JSON that both hosts compile their graphs into,
// and that the CLI, the simulator and (later) the HTTP API read. Immutable once published (V1).

export type Channel = 'email' | 'task' | 'call' | 'whatsapp';
export type DelayUnit = 'minutes' | 'hours' | 'days' | 'businessDays';

export interface Delay {
  amount: number;
  unit: DelayUnit;
}

/** Days are ISO weekdays (1 = Monday … 7 = Sunday); hours are local "HH:mm"; holidays "YYYY-MM-DD". */
export interface SendWindow {
  days?: number[];
  start?: string;
  end?: string;
  holidays?: string[];
}

export interface Template {
  subject?: string;
  body: string;
}

export interface FollowUpNode {
  id: string;
  type: 'followUp';
  name?: string;
  channel: Channel;
  /** Delay before the follow-up runs (F1); zero when absent. */
  delay?: Delay;
  /** What the delay counts from (F1): the enrollment (trigger) date or the previous follow-up's completion. */
  /** F1: from the enrollment (default) or the previous step's completion; F14: from the outcome that chose this path. */
  relativeTo?: 'enrollment' | 'previous' | 'outcome';
  /** Inline template (email, task/call subject) or a reference into the runtime's template registry. */
  template?: Template;
  templateId?: string;
  /** Email sender; falls back to the runtime's default sender. */
  sender?: string;
  /** Tasks and calls: "owner" (default) or a user id (F7). */
  assignee?: string;
  /** Tasks and calls: due date after creation (F7). */
  dueIn?: Delay;
}

export interface OutcomeBranchNode {
  id: string;
  type: 'outcomeBranch';
  name?: string;
  /** One output port per outcome of the follow-up before it (F2, C6). */
  outcomes: string[];
  /** Optional "no response within …" path, port "timeout" (F5). */
  timeout?: Delay;
}

export interface UnenrollCheckNode {
  id: string;
  type: 'unenrollCheck';
  name?: string;
  /** JSONata exit criteria for the path after this node (U3). */
  criteria: string;
}

export type CadenceNode = FollowUpNode | OutcomeBranchNode | UnenrollCheckNode;

/** `from` is a node id or "trigger"; `port` defaults to "out". */
export interface Edge {
  from: string;
  port?: string;
  to: string;
}

export interface EnrollmentSettings {
  mode: 'manual' | 'view';
  /** JSONata view (E2) for mode "view". */
  view?: string;
  /** Enrollment pacing (E9): the rest wait their turn. */
  cap?: { perHour?: number; perDay?: number };
}

export interface UnenrollSettings {
  /** Un-enroll when the record stops matching the view (U2). */
  onLeaveView?: boolean;
  /** JSONata exit criteria over the record (U3). */
  criteria?: string;
  /** ISO date or date-time (cadence time zone): every record still enrolled leaves then (U4). */
  onDate?: string;
  /** Outcomes that un-enroll the record wherever they happen (U1). */
  outcomes?: string[];
  /** A reply from the same company (account or email domain) un-enrolls its colleagues (U11). */
  companyReply?: boolean;
}

/** F13: at most `max` messages (of `channel`, or of every channel that reaches the person: email, WhatsApp, call) in `days` local days. */
export interface FatigueLimit {
  channel?: Channel;
  max: number;
  days: number;
}

export interface FatigueSettings {
  limits: FatigueLimit[];
}

export interface CadenceDefinition {
  id: string;
  name: string;
  module: string;
  enrollment: EnrollmentSettings;
  /** IANA zone used for delays and windows unless the record has its own `Time_Zone` (F11). */
  timezone?: string;
  sendWindow?: SendWindow;
  /** Emails per sender per local day (F12). */
  senderDailyCap?: number;
  /** F13: 'exempt' ignores the engine's contact limits (a transactional cadence); own limits apply on top of them. */
  fatigue?: 'exempt' | FatigueSettings;
  unenroll?: UnenrollSettings;
  nodes: CadenceNode[];
  edges: Edge[];
}

export const TRIGGER = 'trigger';
export const OUT = 'out';
export const TIMEOUT = 'timeout';
