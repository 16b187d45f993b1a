// The engine's clock inside criteria (E7): `$now()`, `$millis()`, `$today()` and the date helpers
// read `now`, the engine clock, never the wall clock; `$today()` is the date in the record's or the
// cadence's zone (F11), not UTC. Self-contained (no imports, no outer names) because its source also
// runs inside the evaluation workers (engine/sandbox).
export function clockBindings(now: number, zone?: string): Record<string, unknown> {
  const DAY = 86_400_000;
  const iso = new Date(now).toISOString();
  const toMillis = (v: unknown): number | undefined => {
    if (typeof v === 'number') return v;
    if (typeof v === 'string') {
      const t = Date.parse(v);
      return Number.isNaN(t) ? undefined : t;
    }
    return undefined;
  };
  let today = iso.slice(0, 10);
  if (zone && zone !== 'UTC') {
    try {
      // en-CA formats as YYYY-MM-DD; an unknown zone keeps UTC (zones are validated on publish).
      today = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
    } catch {
      /* keep UTC */
    }
  }
  return {
    now: () => iso,
    millis: () => now,
    today: () => today,
    daysSince: (v: unknown) => {
      const t = toMillis(v);
      return t === undefined ? undefined : Math.floor((now - t) / DAY);
    },
    hoursSince: (v: unknown) => {
      const t = toMillis(v);
      return t === undefined ? undefined : Math.floor((now - t) / 3_600_000);
    },
    daysUntil: (v: unknown) => {
      const t = toMillis(v);
      return t === undefined ? undefined : Math.ceil((t - now) / DAY);
    },
  };
}
