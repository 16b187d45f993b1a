// SQLite's claim of due enrollments (Store.stepDue). The file has one writer, so the claim is kept in
// memory, not written: a crash ends it with the process. Should two processes share the file, each step
// is still rev-guarded: of two claims of one enrollment one commits, the other finds it moved (D2).
import type { StatementSync } from 'node:sqlite';
import type { Commit, StoredEnrollment } from '../store';
import { stored } from './rows';
import { ENROLLMENT_READ } from '../enrollment-row';

export interface DueHost {
  prepare(sql: string): StatementSync;
  tx<T>(fn: () => T): T;
  commitMany(commits: Commit[]): Promise<boolean[]>;
}

export class DueClaims {
  /** Enrollments a batch of this process is stepping now. */
  private readonly claimed = new Set<string>();

  constructor(private readonly db: DueHost) {}

  async step(now: number, limit: number, leaseUntil: number, cadences: readonly string[] | undefined, step: (due: StoredEnrollment[]) => Promise<Commit[]>) {
    const only = cadences ? 'AND cadence_id IN (SELECT value FROM json_each(?))' : '';
    const args: (string | number)[] = [now, JSON.stringify([...this.claimed]), ...(cadences ? [JSON.stringify(cadences)] : []), limit];
    const due = (this.db.prepare(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE due_at <= ? AND id NOT IN (SELECT value FROM json_each(?)) ${only} ORDER BY due_at, id LIMIT ?`)
      .all(...args) as Record<string, unknown>[]).map(stored);
    if (!due.length) return { due, applied: [] as boolean[] };
    for (const d of due) this.claimed.add(d.enrollment.id);
    try {
      const commits = await step(due);
      const applied = commits.length ? await this.db.commitMany(commits) : [];
      // What the batch did not write is leased (rev-guarded) for the caller to take one by one.
      const done = new Set(commits.filter((_, i) => applied[i]).map((c) => c.enrollment.id));
      const left = due.filter((d) => !done.has(d.enrollment.id));
      const lease = this.db.prepare('UPDATE enrollments SET due_at = ? WHERE id = ? AND rev = ?');
      if (left.length) this.db.tx(() => left.forEach((d) => lease.run(leaseUntil, d.enrollment.id, d.rev)));
      return { due, applied };
    } finally {
      for (const d of due) this.claimed.delete(d.enrollment.id);
    }
  }
}
