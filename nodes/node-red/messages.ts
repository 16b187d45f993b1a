import type { DispatchedAction } from '../../engine';
import { actionEnvelope } from '../../engine/host';
import type { NodeMessage } from './red';

/** The message a performer node understands: e-mail out reads to/from/topic/payload/headers. */
export function actionMessage(a: DispatchedAction): NodeMessage {
  const cadenza = actionEnvelope(a);
  if (a.email) {
    return {
      to: a.email.to, from: a.email.from, topic: a.email.subject, payload: a.email.html, plaintext: a.email.text,
      headers: { 'Message-ID': a.email.messageId, ...a.email.headers }, record: a.record, cadenza,
    };
  }
  if (a.activity) return { topic: a.activity.subject, payload: a.activity, record: a.record, cadenza };
  return { payload: a.whatsapp, record: a.record, cadenza };
}
