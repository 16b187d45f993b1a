// The user directory an engine is configured with: record owners and named assignees by id. Their
// name, address and signature merge into emails (F6) — from here only, never from a record, which
// could forge them — and tasks and calls name them (F7).
import type { Problem } from './errors';

/** The user directory: record owners and assignees by id (F6's signature, F7's assignee). */
export type Users = Record<string, { name?: string; email?: string; signature?: string }>;

const USER_FIELDS = ['name', 'email', 'signature'];
const EMAIL = /^[^\s@<>()",;]+@[^\s@<>()",;]+\.[^\s@<>()",;]+$/;

/** F6, F7: a user directory is `{ id: { name?, email?, signature? } }` with strings, an address for email. */
export function usersProblems(value: unknown, root: string): Problem[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [{ rule: 'F7', field: root, message: 'must be an object of users by id: { "u1": { "name": "…", "email": "…", "signature": "…" } }' }];
  const out: Problem[] = [];
  for (const [id, u] of Object.entries(value)) {
    const f = `${root}.${id}`;
    if (!id.trim()) out.push({ rule: 'F7', field: f, message: 'a user id must not be empty' });
    if (!u || typeof u !== 'object' || Array.isArray(u)) {
      out.push({ rule: 'F7', field: f, message: 'must be { name?, email?, signature? }' });
      continue;
    }
    for (const [k, v] of Object.entries(u)) {
      if (!USER_FIELDS.includes(k)) out.push({ rule: 'F7', field: `${f}.${k}`, message: `unknown (known: ${USER_FIELDS.join(', ')})` });
      else if (typeof v !== 'string') out.push({ rule: k === 'signature' ? 'F6' : 'F7', field: `${f}.${k}`, message: 'must be text' });
      else if (k === 'email' && !EMAIL.test(v)) out.push({ rule: 'F7', field: `${f}.email`, message: 'must be an email address' });
      else if (k === 'signature' && v.length > 10_000) out.push({ rule: 'F6', field: `${f}.signature`, message: 'must be at most 10,000 characters' });
    }
  }
  return out;
}
