// CPU time, for "where does a follow-up's cost lie": the database server's (every postgres process of
// this machine, read from /proc) and a worker's own. On a machine whose cores are all busy, throughput
// is the inverse of the CPU a unit of work takes in total, so these rows say which side to make cheaper.
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { OBSERVER } from './pg-stats';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every Linux Node runs on). */
const HZ = 100;

/**
 * CPU milliseconds used so far by the postgres processes of this machine, those that exited included
 * (a reaped backend's time is added to its parent's cutime/cstime); null where there is no /proc.
 */
export function serverCpuMs(): number | null {
  let dirs: string[];
  try {
    dirs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  let ticks = 0;
  for (const pid of dirs) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    if (!stat.includes('(postgres)')) continue;
    // Fields after "pid (comm) ": state is the 1st, utime the 12th, stime, cutime, cstime follow.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return (ticks * 1000) / HZ;
}

/** This process's CPU milliseconds (user + system) since `from`. */
export function ownCpuMs(from: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1000;
}

/** Waits until no other client session is left on the database and its backends have been reaped. */
export async function quiet(c: pg.Client): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const { n } = (await c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND application_name <> $1", [OBSERVER])).rows[0];
    if (n === 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 100)); // a backend that left pg_stat_activity is reaped a moment later
}

/**
 * The database server's CPU milliseconds spent on `work` against the database at `url`: read with every
 * other session on it closed before and after, so what its backends used is all counted, once.
 */
export async function serverCpuOf<T>(url: string, work: () => Promise<T>): Promise<{ out: T; serverMs: number | null }> {
  const c = new pg.Client({ connectionString: url, application_name: OBSERVER });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await quiet(c);
    const before = serverCpuMs();
    const out = await work();
    await quiet(c);
    const after = serverCpuMs();
    return { out, serverMs: before === null || after === null ? null : after - before };
  } finally {
    await c.end().catch(() => undefined);
  }
}
