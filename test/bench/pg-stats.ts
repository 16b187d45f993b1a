// Rows written, as PostgreSQL counts them (pg_stat_user_tables: inserted + updated + deleted tuples over
// every user table of a database), for "rows written per follow-up" beside pg-boss's rows per job.
//
// A backend keeps its table counters to itself and publishes them at most once a second, or when it
// has been idle a while (up to 10 s later), so reading them while the writers' connections live gives
// a number that depends on timing. A backend always publishes them as it exits, before it leaves
// pg_stat_activity; so the bench closes the writers' pools, waits until no other session is left on
// the database, drops this session's cached snapshot and reads: exact, whatever the timing.
import pg from 'pg';

/** The bench's own observing sessions (this one, cpu.ts's), left out when it waits for the writers to leave. */
export const OBSERVER = 'cadenza-bench-observer';

export interface Counts { total: number; tables: Record<string, number> }

/** What was written between two reads, per table (tables with none left out). */
export function delta(before: Counts, after: Counts): Record<string, number> {
  return Object.fromEntries(Object.entries(after.tables).map(([t, n]) => [t, n - (before.tables[t] ?? 0)]).filter(([, n]) => n !== 0));
}

export class RowsWritten {
  private constructor(private readonly c: pg.Client, private readonly db: string) {}

  static async open(url: string): Promise<RowsWritten> {
    const c = new pg.Client({ connectionString: url, application_name: OBSERVER });
    c.on('error', () => undefined);
    await c.connect();
    return new RowsWritten(c, new URL(url).pathname.slice(1));
  }

  /** Written tuples so far, in total and per table; call it with every writer's connection closed (see above). */
  async read(): Promise<Counts> {
    for (let i = 0; ; i++) {
      // Client backends only: an autovacuum worker on the database writes no tuples it would count.
      const { n } = (await this.c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND application_name <> $2", [this.db, OBSERVER])).rows[0];
      if (n === 0) break;
      if (i > 1000) throw new Error(`${n} sessions still open on ${this.db}: their counts would be missing`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.c.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await this.c.query("SELECT schemaname || '.' || relname AS t, (n_tup_ins + n_tup_upd + n_tup_del)::bigint AS n FROM pg_stat_user_tables");
    const tables = Object.fromEntries(rows.map((r) => [r.t as string, Number(r.n)]));
    return { total: Object.values(tables).reduce((a, b) => a + b, 0), tables };
  }

  async close(): Promise<void> {
    await this.c.end().catch(() => undefined);
  }
}
