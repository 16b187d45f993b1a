// The host kit: the public entry point for adapters (Node-RED, n8n) besides engine/index.ts. What a
// host needs to turn its graph into a cadence, run the engine on its server, show live state, check an
// editor's flow and hand actions to performers — so adapters only translate host shapes.
export { cadenzaHttp } from '../http/server';
export { trackingToken } from '../http/tracking';
export { compileTrigger, compileNodeRedFlow, NODE_RED_TYPES, type FlowNode } from '../model/formats/node-red';
export { checkNodeRedFlow } from '../model/formats/node-red-check';
export { branchNode, branchPorts, checkNode, followUpNode, triggerSettings, type Params } from '../model/formats/params';
export { CHANNELS, DELAY_MAX, DELAY_UNITS, PARAMS, paramProblem, editorSchema, type Param } from '../model/formats/schema';
export { validateNode, validateTrigger } from '../model/validate';
export type { Edition } from '../runtime/limits';
export { RECORD_ACTIONS, runRecordAction, type RecordAction } from '../runtime/record-actions';
export { openStore } from '../store/open';
export { explain, hintFor } from './hints';
export { stepStates, wouldStop, type StepState, type WouldStop } from './live';
export { mergeFields, previewFollowUp, SAMPLE_RECORD, type Preview } from './preview';
export { actionEnvelope, outcomeInput } from './envelope';
export type { RuntimeEvent } from '../runtime/runtime';
export { HOST_DEFAULTS } from './defaults';
export { hostOptions, nodeRedEngineSettings, type HostSettingsText } from './settings';
export { usersProblems } from '../model/users';
