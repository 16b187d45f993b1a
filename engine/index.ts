// The public API: few, typed exports. Hosts (n8n, Node-RED), the CLI and the HTTP API use only these.
export type { CadenceDefinition, CadenceNode, FollowUpNode, OutcomeBranchNode, UnenrollCheckNode, Edge, Delay, SendWindow, Template, Channel } from './model/types';
export { validateDefinition, assertDefinition } from './model/validate';
export { CadenzaError, formatProblem, type Problem } from './model/errors';
export { OUTCOMES, classifyReply, isAutoReply } from './model/outcomes';
export { transition } from './machine/machine';
export type { Enrollment, MachineEvent, Effect, Context, RecordSnapshot } from './machine/types';
export { Criteria } from './criteria/criteria';
export type { Store } from './store/store';
export { SqliteStore, sqliteUnavailableMessage } from './store/lazy-sqlite';
export { Runtime, CannotRunError, type RuntimeOptions, type DispatchedAction, type EnrollAnswer } from './runtime/runtime';
export { VirtualClock, systemClock, type Clock } from './runtime/clock';
export type { Actor, Permission } from './runtime/permissions';
export { simulate, type SimulationInput, type SimulationResult } from './simulate/simulate';
export { verifyToken } from './render/render';
export { Sandbox, boundedCriteria } from './sandbox/sandbox';
export { decideAll, type DecidedCriteria, type CriteriaFailure } from './criteria/definition';
