// The engine's clock inside criteria (E7): `$now()`, `$millis()`, `$today()` and the date helpers
// read `now`, the engine clock, never the wall clock. Dates are read in the record's or the cadence's
// zone (F11): `$today()` is the date there, `$daysSince`/`$daysUntil` count calendar days there, and
// a value without an offset ("2026-03-01", "2026-03-01T09:00") is a wall time there — never in the zone of whichever server runs the engine
// (Date.parse would read it in the process's zone). Self-contained (no imports, no outer names)
// because its source also runs inside the evaluation processes (engine/sandbox).
export function clockBindings(now: number, zone?: string): Record<string, unknown> {
  const DAY = 86_400_000;
  const iso = new Date(now).toISOString();
  const LOCAL = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?)?$/;
  const named = zone && zone !== 'UTC' ? zone : undefined;
  let fmt: Intl.DateTimeFormat | undefined;
  /** The zone's offset from UTC at instant t, in ms. */
  const offset = (t: number): number => {
    fmt ??= new Intl.DateTimeFormat('en-US', { timeZone: named, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const p: Record<string, number> = {};
    for (const x of fmt.formatToParts(t)) if (x.type !== 'literal') p[x.type] = Number(x.value);
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(t / 1000) * 1000;
  };
  const toMillis = (v: unknown): number | undefined => {
    if (typeof v === 'number') return v;
    if (typeof v !== 'string') return undefined;
    const m = LOCAL.exec(v);
    if (!m) {
      const t = Date.parse(v);
      return Number.isNaN(t) ? undefined : t;
    }
    const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), +((m[7] ?? '0').padEnd(3, '0')));
    if (Number.isNaN(wall) || new Date(wall).getUTCDate() !== +m[3]) return undefined; // 2026-02-30 is no date
    if (!named) return wall;
    try {
      // Twice: the offset at the guess can differ from the offset at the answer across a DST change.
      let t = wall - offset(wall);
      t = wall - offset(t);
      return t;
    } catch {
      return wall; // an unknown zone reads as UTC (zones are validated on publish)
    }
  };
  /** The calendar day (days since 1970-01-01) of instant t in the zone; an unknown zone reads as UTC. */
  const dayOf = (t: number): number => {
    if (!named) return Math.floor(t / DAY);
    try {
      return Math.floor((t + offset(t)) / DAY);
    } catch {
      return Math.floor(t / DAY);
    }
  };
  const today = new Date(dayOf(now) * DAY).toISOString().slice(0, 10);
  return {
    now: () => iso,
    millis: () => now,
    today: () => today,
    // Days are calendar days in the zone, as a person there counts them: at 00:30 a date of 23:00 the
    // evening before is 1 day ago, though under an hour passed; a DST day (23 or 25 hours) is one day.
    daysSince: (v: unknown) => {
      const t = toMillis(v);
      return t === undefined ? undefined : dayOf(now) - dayOf(t);
    },
    // Hours are elapsed hours (a clock's hours are not a calendar's): across a DST change they are real time.
    hoursSince: (v: unknown) => {
      const t = toMillis(v);
      return t === undefined ? undefined : Math.floor((now - t) / 3_600_000);
    },
    daysUntil: (v: unknown) => {
      const t = toMillis(v);
      return t === undefined ? undefined : dayOf(t) - dayOf(now);
    },
  };
}
