// What every host hands its performers, and how it reports a response back: one shape for n8n and
// Node-RED. The adapters only move these into their own message form (msg fields, item json).
import type { InboundMessage } from '../model/outcomes';
import type { DispatchedAction } from '../runtime/runtime';

/** The action's identity, carried beside the payload: the performer echoes `key` back with an outcome. */
export function actionEnvelope(a: DispatchedAction) {
  return { key: a.key, idempotencyKey: a.idempotencyKey, cadenceId: a.cadenceId, enrollmentId: a.enrollmentId, recordId: a.recordId, nodeId: a.nodeId, channel: a.channel, attempt: a.attempt, version: a.version };
}

/**
 * An outcome as the engine records it. A "replied" outcome carries the reply's subject and headers, so
 * the engine can tell an out-of-office answer (U10) from a real reply in every host, not only in one.
 */
export function outcomeInput(key: string, outcome: string, reply?: { subject?: unknown; headers?: unknown }): { key: string; outcome: string; message?: InboundMessage } {
  if (outcome !== 'replied' || !reply) return { key, outcome };
  const headers = reply.headers && typeof reply.headers === 'object' ? (reply.headers as InboundMessage['headers']) : {};
  return { key, outcome, message: { subject: typeof reply.subject === 'string' ? reply.subject : '', headers } };
}
