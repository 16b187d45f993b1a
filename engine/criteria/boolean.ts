// The truth of a criteria result, exactly as jsonata casts to boolean ($boolean, `and`, `or`,
// predicates): '' 0 null false {} [] functions and lambdas are false; an array is true when one of
// its members is. Self-contained (no imports, no outer names) because its source also runs inside
// the evaluation workers (engine/sandbox), so the two can never disagree.
export function jsonataBoolean(arg: unknown): boolean | undefined {
  if (typeof arg === 'undefined') return undefined;
  if (Array.isArray(arg)) {
    if (arg.length === 1) return jsonataBoolean(arg[0]) === true;
    return arg.length > 1 && arg.some((v) => jsonataBoolean(v) === true);
  }
  if (typeof arg === 'string') return arg.length > 0;
  if (typeof arg === 'number') {
    if (Number.isNaN(arg)) return false;
    // jsonata refuses to cast an infinite number (D1001) rather than calling it true.
    if (!Number.isFinite(arg)) throw { code: 'D1001', message: 'Number out of range', value: arg };
    return arg !== 0;
  }
  if (typeof arg === 'function') return false;
  if (arg !== null && typeof arg === 'object') {
    const fn = arg as { _jsonata_function?: unknown; _jsonata_lambda?: unknown };
    if (fn._jsonata_function === true || fn._jsonata_lambda === true) return false;
    return Object.keys(arg).length > 0;
  }
  return arg === true;
}
