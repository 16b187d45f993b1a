import { CadenzaError } from '../model/errors';

/** P1: four permissions; "manageAutomation" grants all four. */
export type Permission = 'view' | 'manage' | 'enroll' | 'unenroll' | 'manageAutomation';

/** Who did something. A plain string is a trusted caller (a host flow, the CLI) with every permission. */
export type Actor = string | { id: string; permissions?: readonly Permission[] };

export const AUTOMATION = 'automation';

export function actorId(actor: Actor): string {
  return typeof actor === 'string' ? actor : actor.id;
}

export function can(actor: Actor, need: Exclude<Permission, 'manageAutomation'>): boolean {
  if (typeof actor === 'string' || !actor.permissions) return true;
  return actor.permissions.includes('manageAutomation') || actor.permissions.includes(need);
}

/** P2: a refused action names the missing permission and changes nothing (it throws before any write). */
export function requirePermission(actor: Actor, need: Exclude<Permission, 'manageAutomation'>, rule = 'P2'): void {
  if (!can(actor, need)) throw new CadenzaError('forbidden', rule, `${actorId(actor)} lacks the "${need}" permission`);
}
