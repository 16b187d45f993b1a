// The criteria fast path: the common JSONata subset compiled from jsonata's own AST to a plain JS
// function. Field paths, literals, = != < <= > >=, and/or, `in` a literal list, unary minus, and
// $lowercase $uppercase $exists $contains $not $number $string $boolean with the engine-clock date
// helpers. It is exact by construction:
// - an AST node carrying anything else (predicates, stages, group-by, focus, index, tuple bindings,
//   keepArray…) on a literal, a list, a call or a path is outside the subset: jsonata evaluates it;
// - only `$not(x)` is negation; `not(x)` calls a field named "not", which jsonata rejects (T1005);
// - whenever a value leaves what the subset decides exactly (arrays, objects, types jsonata would
//   refuse), the function answers FALLBACK and jsonata evaluates instead, so values and errors are jsonata's.
// The official JSONata test suite checks this (test/unit/criteria-suite.test.ts).

export const FALLBACK = Symbol('fallback');
type V = unknown;
/** `zone` is the record's or cadence's: only the date helpers read it. */
type Fn = (rec: unknown, now: number, zone?: string) => V;

interface Node {
  type: string;
  value?: unknown;
  steps?: Node[];
  lhs?: Node;
  rhs?: Node;
  expression?: Node;
  expressions?: Node[];
  arguments?: Node[];
  procedure?: Node;
}

class Unsupported extends Error {}

// The only AST keys the subset understands; any other key changes jsonata's meaning.
const KNOWN = new Set(['type', 'value', 'position', 'steps', 'lhs', 'rhs', 'expression', 'expressions', 'arguments', 'procedure']);
const DAY = 86_400_000;
const isScalar = (v: V) => v === undefined || v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

function plain(n: Node | undefined): Node {
  if (!n || typeof n !== 'object') throw new Unsupported();
  // (A key that is present but undefined — a call's `name` — means nothing.)
  for (const k of Object.keys(n)) if (!KNOWN.has(k) && (n as unknown as Record<string, unknown>)[k] !== undefined) throw new Unsupported();
  return n;
}

/** jsonata's boolean cast for the scalars the subset produces. */
function truthy(v: V): boolean {
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  return v === true;
}

// A date or date-time without an offset is a wall time in the criteria's zone (see bindings.ts).
const LOCAL = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?)?$/;

// The zone arithmetic of bindings.ts, again (those bindings must stay self-contained for the sandbox);
// the differential test in test/unit/criteria-fast.test.ts keeps the two in agreement. One formatter
// per zone for the process: building one costs far more than a comparison.
const formats = new Map<string, Intl.DateTimeFormat | null>();

/** The zone's offset from UTC at instant t in ms; undefined for UTC or a zone Intl does not know (read as UTC, as the bindings do). */
function offset(zone: string | undefined, t: number): number | undefined {
  if (!zone || zone === 'UTC') return undefined;
  let f = formats.get(zone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    } catch {
      f = null;
    }
    if (formats.size > 1000) formats.clear(); // zones come from records: bounded, whatever they hold
    formats.set(zone, f);
  }
  if (!f) return undefined;
  const p: Record<string, number> = {};
  for (const x of f.formatToParts(t)) if (x.type !== 'literal') p[x.type] = Number(x.value);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(t / 1000) * 1000;
}

/** The calendar day of instant t in the zone (days since 1970-01-01 there). */
function dayOf(t: number, zone: string | undefined): number {
  return Math.floor((t + (offset(zone, t) ?? 0)) / DAY);
}

/** Like the bindings' reading of a date: a wall time is read in the zone. */
function millis(v: V, zone: string | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return undefined;
  const m = LOCAL.exec(v);
  if (!m) {
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  }
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), +((m[7] ?? '0').padEnd(3, '0')));
  if (Number.isNaN(wall) || new Date(wall).getUTCDate() !== +m[3]) return undefined;
  if (offset(zone, wall) === undefined) return wall;
  // Twice: the offset at the guess can differ from the offset at the answer across a DST change.
  const t = wall - offset(zone, wall)!;
  return wall - offset(zone, t)!;
}

function literal(n: Node): V {
  plain(n);
  if (!['string', 'number', 'value'].includes(n.type) || !isScalar(n.value)) throw new Unsupported();
  return n.value;
}

function path(steps: Node[]): Fn {
  if (!steps.length) throw new Unsupported();
  const names = steps.map((s) => {
    plain(s);
    if (s.type !== 'name' || typeof s.value !== 'string') throw new Unsupported();
    return s.value;
  });
  return (rec) => {
    let v: V = rec;
    for (const n of names) {
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'object' || Array.isArray(v)) return FALLBACK; // mapping over arrays is jsonata's business
      v = (v as Record<string, V>)[n];
    }
    return isScalar(v) ? v : FALLBACK;
  };
}

function compileNode(n: Node): Fn {
  plain(n);
  switch (n.type) {
    case 'string':
    case 'number':
    case 'value': {
      const v = literal(n);
      return () => v;
    }
    case 'path':
      return path(n.steps ?? []);
    case 'unary': {
      if (n.value === '-' && n.expression) {
        const e = compileNode(n.expression);
        return (r, t, z) => {
          const v = e(r, t, z);
          if (v === FALLBACK) return FALLBACK;
          if (v === undefined) return undefined;
          return typeof v === 'number' ? -v : FALLBACK;
        };
      }
      throw new Unsupported();
    }
    case 'binary':
      return binary(n);
    case 'function':
      return call(n);
    default:
      throw new Unsupported();
  }
}

function binary(n: Node): Fn {
  const op = n.value as string;
  if (op === 'in') {
    const rhs = plain(n.rhs);
    if (rhs.type !== 'unary' || rhs.value !== '[') throw new Unsupported();
    const list = (rhs.expressions ?? []).map(literal);
    const l = compileNode(plain(n.lhs));
    return (r, t, z) => {
      const v = l(r, t, z);
      if (v === FALLBACK) return FALLBACK;
      if (v === undefined) return false;
      return list.some((x) => x === v);
    };
  }
  const l = compileNode(plain(n.lhs));
  const rr = compileNode(plain(n.rhs));
  if (op === 'and' || op === 'or') {
    // Short-circuit like jsonata: the right side is not evaluated when the left decides.
    return (r, t, z) => {
      const a = l(r, t, z);
      if (a === FALLBACK) return FALLBACK;
      if (op === 'and' && !truthy(a)) return false;
      if (op === 'or' && truthy(a)) return true;
      const b = rr(r, t, z);
      if (b === FALLBACK) return FALLBACK;
      return truthy(b);
    };
  }
  if (op === '=' || op === '!=') {
    return (r, t, z) => {
      const a = l(r, t, z);
      const b = rr(r, t, z);
      if (a === FALLBACK || b === FALLBACK) return FALLBACK;
      if (a === undefined || b === undefined) return false;
      return op === '=' ? a === b : a !== b;
    };
  }
  if (op === '<' || op === '<=' || op === '>' || op === '>=') {
    return (r, t, z) => {
      const a = l(r, t, z);
      const b = rr(r, t, z);
      if (a === FALLBACK || b === FALLBACK) return FALLBACK;
      const okA = typeof a === 'number' || typeof a === 'string';
      const okB = typeof b === 'number' || typeof b === 'string';
      // Anything else is an error in jsonata (T2009, T2010): let it raise it.
      if (!(okA || a === undefined) || !(okB || b === undefined)) return FALLBACK;
      if (a === undefined || b === undefined) return undefined;
      if (typeof a !== typeof b) return FALLBACK;
      const x = a as number | string;
      const y = b as number | string;
      return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
    };
  }
  throw new Unsupported();
}

function call(n: Node): Fn {
  const proc = plain(n.procedure);
  // Only a `$name` variable is a built-in; `not(x)` (a path) is jsonata's, which refuses it.
  if (proc.type !== 'variable' || typeof proc.value !== 'string') throw new Unsupported();
  const name = proc.value;
  const args = (n.arguments ?? []).map((a) => compileNode(plain(a)));
  const arity = (k: number) => {
    if (args.length !== k) throw new Unsupported();
  };
  const one = (f: (v: V, now: number, zone?: string) => V): Fn => {
    arity(1);
    return (r, t, z) => {
      const v = args[0](r, t, z);
      return v === FALLBACK ? FALLBACK : f(v, t, z);
    };
  };
  switch (name) {
    case 'lowercase':
    case 'uppercase':
      return one((v) => (v === undefined ? undefined : typeof v === 'string' ? (name === 'lowercase' ? v.toLowerCase() : v.toUpperCase()) : FALLBACK));
    case 'exists':
      return one((v) => v !== undefined);
    case 'not':
      return one((v) => (v === undefined ? undefined : !truthy(v)));
    case 'boolean':
      return one((v) => (v === undefined ? undefined : truthy(v)));
    case 'string':
      return one((v) => (v === undefined ? undefined : typeof v === 'string' ? v : FALLBACK));
    case 'number':
      return one((v) => (v === undefined ? undefined : typeof v === 'number' ? v : FALLBACK));
    case 'contains': {
      arity(2);
      return (r, t, z) => {
        const s = args[0](r, t, z);
        if (s === FALLBACK) return FALLBACK;
        const p = args[1](r, t, z);
        // jsonata checks the signature first: a pattern that is not a string (T0410) is its error.
        if (p === FALLBACK || typeof p !== 'string') return FALLBACK;
        if (s === undefined) return undefined;
        return typeof s === 'string' ? s.includes(p) : FALLBACK;
      };
    }
    // Calendar days in the zone; elapsed hours (as bindings.ts).
    case 'daysSince':
      return one((v, now, zone) => {
        const t = millis(v, zone);
        return t === undefined ? t : dayOf(now, zone) - dayOf(t, zone);
      });
    case 'hoursSince':
      return one((v, now, zone) => {
        const t = millis(v, zone);
        return t === undefined ? t : Math.floor((now - t) / 3_600_000);
      });
    case 'daysUntil':
      return one((v, now, zone) => {
        const t = millis(v, zone);
        return t === undefined ? t : dayOf(t, zone) - dayOf(now, zone);
      });
    case 'millis':
      arity(0);
      return (_r, now) => now;
    default:
      throw new Unsupported();
  }
}

/** A plain function for the expression's AST, or undefined when it is outside the subset. */
export function compileFast(ast: unknown): Fn | undefined {
  try {
    return compileNode(ast as Node);
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
}
