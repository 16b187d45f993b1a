// The criteria fast path: the common JSONata subset compiled from jsonata's own AST to a plain JS
// function. Field paths, literals, = != < <= > >=, and/or, `in` a literal list, unary minus, and
// $lowercase $uppercase $exists $contains $not $number $string $boolean with the engine-clock date
// helpers. Whenever a value leaves what the subset decides exactly (arrays, objects, mixed types that
// jsonata would reject), the function answers FALLBACK and jsonata evaluates instead, so results and
// errors are jsonata's.

export const FALLBACK = Symbol('fallback');
type V = unknown;
type Fn = (rec: unknown, now: number) => V;

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
  stages?: unknown;
  predicate?: unknown;
  group?: unknown;
  focus?: unknown;
  index?: unknown;
  tuple?: unknown;
  keepArray?: unknown;
}

class Unsupported extends Error {}

const DAY = 86_400_000;
const isScalar = (v: V) => v === undefined || v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** jsonata's $boolean for scalars. */
function truthy(v: V): boolean {
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  return v === true;
}

function millis(v: V): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

function path(steps: Node[]): Fn {
  const names = steps.map((s) => {
    if (s.type !== 'name' || typeof s.value !== 'string' || s.stages || s.predicate || s.group || s.focus || s.index || s.tuple || s.keepArray) throw new Unsupported();
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
  switch (n.type) {
    case 'string':
    case 'number':
    case 'value': {
      const v = n.value;
      if (!isScalar(v)) throw new Unsupported();
      return () => v;
    }
    case 'path':
      return path(n.steps ?? []);
    case 'name':
      return path([n]);
    case 'unary': {
      if (n.value === '-' && n.expression) {
        const e = compileNode(n.expression);
        return (r, t) => {
          const v = e(r, t);
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
    if (n.rhs?.type !== 'unary' || n.rhs.value !== '[') throw new Unsupported();
    const list = (n.rhs.expressions ?? []).map((x) => {
      if (!['string', 'number', 'value'].includes(x.type) || !isScalar(x.value)) throw new Unsupported();
      return x.value;
    });
    const l = compileNode(n.lhs!);
    return (r, t) => {
      const v = l(r, t);
      if (v === FALLBACK) return FALLBACK;
      if (v === undefined) return false;
      return list.some((x) => x === v);
    };
  }
  const l = compileNode(n.lhs!);
  const rr = compileNode(n.rhs!);
  if (op === 'and' || op === 'or') {
    return (r, t) => {
      const a = l(r, t);
      if (a === FALLBACK) return FALLBACK;
      if (op === 'and' && !truthy(a)) return false;
      if (op === 'or' && truthy(a)) return true;
      const b = rr(r, t);
      if (b === FALLBACK) return FALLBACK;
      return truthy(b);
    };
  }
  if (op === '=' || op === '!=') {
    return (r, t) => {
      const a = l(r, t);
      const b = rr(r, t);
      if (a === FALLBACK || b === FALLBACK) return FALLBACK;
      if (a === undefined || b === undefined) return false;
      return op === '=' ? a === b : a !== b;
    };
  }
  if (op === '<' || op === '<=' || op === '>' || op === '>=') {
    return (r, t) => {
      const a = l(r, t);
      const b = rr(r, t);
      if (a === FALLBACK || b === FALLBACK) return FALLBACK;
      const okA = typeof a === 'number' || typeof a === 'string';
      const okB = typeof b === 'number' || typeof b === 'string';
      // Anything else is an error or a subtle case in jsonata: let it decide.
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
  const proc = n.procedure;
  const name = proc?.type === 'variable' ? (proc.value as string) : proc?.type === 'path' && proc.steps?.length === 1 && proc.steps[0].value === 'not' ? 'not' : undefined;
  const args = (n.arguments ?? []).map(compileNode);
  const arity = (k: number) => {
    if (args.length !== k) throw new Unsupported();
  };
  const one = (f: (v: V, now: number) => V): Fn => {
    arity(1);
    return (r, t) => {
      const v = args[0](r, t);
      return v === FALLBACK ? FALLBACK : f(v, t);
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
      return (r, t) => {
        const s = args[0](r, t);
        const p = args[1](r, t);
        if (s === FALLBACK || p === FALLBACK) return FALLBACK;
        if (s === undefined) return undefined;
        return typeof s === 'string' && typeof p === 'string' ? s.includes(p) : FALLBACK;
      };
    }
    case 'daysSince':
      return one((v, now) => {
        const t = millis(v);
        return t === undefined ? undefined : Math.floor((now - t) / DAY);
      });
    case 'hoursSince':
      return one((v, now) => {
        const t = millis(v);
        return t === undefined ? undefined : Math.floor((now - t) / 3_600_000);
      });
    case 'daysUntil':
      return one((v, now) => {
        const t = millis(v);
        return t === undefined ? undefined : Math.ceil((t - now) / DAY);
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
