// CPU time, for "where does a follow-up's cost lie": the database server's (its processes, read from
// /proc) and a worker's own. A run that keeps every core busy goes as fast as the CPU a unit of work
// takes in total allows, so these rows say which side would have to do less.
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { OBSERVER } from './pg-stats';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every Linux Node runs on). */
const HZ = 100;

/**
 * CPU milliseconds used so far by one PostgreSQL server: its postmaster and the processes it started,
 * those that exited included (a reaped backend's time is added to the postmaster's cutime/cstime).
 * Only that server's: another one on the machine (a test run's) starting or stopping would count
 * otherwise. Null where there is no /proc.
 */
export function serverCpuMs(postmaster: number): number | null {
  let dirs: string[];
  try {
    dirs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  let ticks = 0;
  for (const pid of dirs) {
    const f = statFields(pid);
    // Fields after "pid (comm) ": ppid is the 2nd, utime the 12th, then stime, cutime, cstime.
    if (f && (Number(pid) === postmaster || Number(f[1]) === postmaster)) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return (ticks * 1000) / HZ;
}

/** The fields of /proc/<pid>/stat after "pid (comm) ", or null when it has exited (or there is no /proc). */
function statFields(pid: string | number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
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
    // This session's backend is a child of the server's postmaster; a server elsewhere is not measured.
    const backend = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const postmaster = process.env.CADENZA_BENCH_PG_URL ? null : Number(statFields(backend)?.[1] ?? NaN);
    const read = () => (postmaster && Number.isFinite(postmaster) ? serverCpuMs(postmaster) : null);
    await quiet(c);
    const before = read();
    const out = await work();
    await quiet(c);
    const after = read();
    return { out, serverMs: before === null || after === null ? null : after - before };
  } finally {
    await c.end().catch(() => undefined);
  }
}
