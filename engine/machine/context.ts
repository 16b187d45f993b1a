// What the machine reads from its context besides the event: the zone it counts days in, the key of an
// action, and the counters a send is checked against (F12). Shared with the runtime, which reads the
// same counters before a step.
import { isValidZone, localDate } from '../time/time';
import type { FollowUpNode } from '../model/types';
import type { Context, Enrollment } from './types';

export function zoneOf(ctx: Context): string {
  const own = ctx.record?.data.Time_Zone;
  if (typeof own === 'string' && isValidZone(own)) return own;
  return ctx.def.timezone ?? ctx.timezone;
}

export function actionKey(e: Pick<Enrollment, 'id' | 'run'>, nodeId: string): string {
  return `${e.id}:${e.run}:${nodeId}`;
}

export function senderOf(node: FollowUpNode, ctx: Pick<Context, 'defaultSender'>): string {
  return node.sender ?? ctx.defaultSender;
}

/** The F12 counter an email of `node` counts against: its sender on the local day. */
export function capKey(node: FollowUpNode, ctx: Context): string {
  return `${senderOf(node, ctx)}|${localDate(ctx.now, zoneOf(ctx))}`;
}

