// API keys (P1) and signed links: a key is shown once and only its hash is stored; tracking and
// unsubscribe links are signed with the runtime's secret. (keys.ts is about idempotency keys.)
import { createHash, randomBytes } from 'node:crypto';
import { CadenzaError } from '../model/errors';
import { verifyToken } from '../render/render';
import type { Core } from './core';
import { requirePermission, type Actor, type Permission } from './permissions';

const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

/** P1: a new API key with scopes; the key is shown once, only its hash is stored. */
export async function createApiKey(core: Core, name: string, scopes: readonly string[], actor: Actor): Promise<{ id: string; key: string; scopes: string[] }> {
  requirePermission(actor, 'manage');
  const allowed = ['view', 'manage', 'enroll', 'unenroll', 'manageAutomation'];
  if (typeof name !== 'string' || !name.trim()) throw new CadenzaError('invalid_key', 'D4', 'a key needs a name');
  const bad = (Array.isArray(scopes) ? scopes : [scopes]).filter((x) => !allowed.includes(x as string));
  if (!Array.isArray(scopes) || !scopes.length || bad.length) throw new CadenzaError('invalid_key', 'P1', `scopes must be among ${allowed.join(', ')}`);
  const id = randomBytes(6).toString('hex');
  const key = `cz_${id}_${randomBytes(24).toString('base64url')}`;
  await core.store.addApiKey({ id, hash: hashKey(key), name: name.trim(), scopes: [...scopes], createdAt: core.clock.now(), revokedAt: null });
  await core.audit({ actor, event: 'apiKey', reason: `API key "${name.trim()}" created with ${scopes.join(', ')}` });
  return { id, key, scopes: [...scopes] };
}

/** P1: the keys, without their hashes — who has access, and since when. */
export async function listApiKeys(core: Core, actor: Actor) {
  requirePermission(actor, 'manage');
  return core.store.listApiKeys();
}

/** P1: a key stops working at once; the audit log says who revoked it. */
export async function revokeApiKey(core: Core, id: string, actor: Actor): Promise<void> {
  requirePermission(actor, 'manage');
  if (typeof id !== 'string' || !id) throw new CadenzaError('invalid_key', 'D4', 'give the key\'s id');
  const key = (await core.store.listApiKeys()).find((k) => k.id === id);
  if (!key) throw new CadenzaError('unknown_key', 'D4', `no API key "${id}"`);
  if (!(await core.store.revokeApiKey(id, core.clock.now()))) throw new CadenzaError('already_revoked', 'P1', `API key "${key.name}" is already revoked`);
  await core.audit({ actor, event: 'apiKey', reason: `API key "${key.name}" (${id}) revoked` });
}

/** The actor an API key stands for, with its scopes as permissions; undefined for an unknown or revoked key. */
export async function authenticate(core: Core, key: unknown): Promise<Exclude<Actor, string> | undefined> {
  if (typeof key !== 'string' || !key.startsWith('cz_') || key.length > 200) return undefined;
  const row = await core.store.findApiKey(hashKey(key));
  if (!row || row.revokedAt) return undefined;
  return { id: `key:${row.name}`, permissions: row.scopes as Permission[] };
}

/** Verifies a tracking or unsubscribe token signed by this runtime. */
export function verifyLink(core: Core, token: string): Record<string, string> | null {
  return verifyToken(token, core.opts.secret);
}

