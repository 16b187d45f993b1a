// The pg client the store's pool uses: BIGINT columns read as numbers (times are epoch ms), and every
// parameterised statement prepared once per connection.
import { createHash } from 'node:crypto';
import pg from 'pg';

const BIGINT = 20;
export const NUMERIC_TYPES = { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === BIGINT ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) };


/**
 * Every parameterised statement runs as a named prepared statement: parsed and planned once per
 * connection instead of on every call (the batched commit is one large statement). The set of
 * statement texts is fixed by the store's code, so the per-connection cache stays small.
 */
const names = new Map<string, string>();
// A prepared `SELECT *` from a table fails once a migration adds a column ("cached plan must not
// change result type"), so those stay unprepared; hot statements name their columns.
const STAR = /\*\s+FROM\s+(cadences|cadence_versions|records|enrollments|timers|outbox|outcomes|audit|counters|meta|api_keys)\b|RETURNING\s+\*/i;
export class PreparingClient extends pg.Client {
  override query(config: unknown, values?: unknown, callback?: unknown): never {
    if (typeof config === 'string' && Array.isArray(values) && !STAR.test(config)) {
      let name = names.get(config);
      if (!name) names.set(config, (name = `cz_${createHash('sha1').update(config).digest('hex').slice(0, 20)}`));
      return (super.query as (...a: unknown[]) => never)({ name, text: config, values }, callback);
    }
    return (super.query as (...a: unknown[]) => never)(config, values, callback);
  }
}
