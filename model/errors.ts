/**
 * The one error type every synth-time check throws. It always names where the bad
 * value came from (a construct path, or a file/field for the model used on its own),
 * the value that was given and what was expected, so a user can fix the input
 * without reading our source.
 */
export class MeshValidationError extends Error {
  public readonly where: string;
  public readonly field: string;
  public readonly value: unknown;
  public readonly expected: string;

  constructor(where: string, field: string, value: unknown, expected: string) {
    super(`${where || '<root>'}: ${field} is ${show(value)}; expected ${expected}`);
    this.name = 'MeshValidationError';
    this.where = where;
    this.field = field;
    this.value = value;
    this.expected = expected;
  }
}

/** Render a value for an error message: short, unambiguous (strings quoted). */
export function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  try {
    const s = JSON.stringify(value);
    return s.length > 120 ? s.slice(0, 117) + '...' : s;
  } catch {
    return String(value);
  }
}

/**
 * Checks bound to one location. Model builders take a `Check` so that every
 * message carries the same construct path without threading strings by hand.
 */
export class Check {
  constructor(public readonly where: string) {}

  fail(field: string, value: unknown, expected: string): never {
    throw new MeshValidationError(this.where, field, value, expected);
  }

  /** An object (not null, not an array) where one is required. */
  object(field: string, value: unknown): asserts value is Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(field, value, 'an object');
    }
  }

  nonEmptyString(field: string, value: unknown): asserts value is string {
    if (typeof value !== 'string' || value.length === 0) this.fail(field, value, 'a non-empty string');
  }

  integer(field: string, value: unknown, min: number, max: number): asserts value is number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(field, value, `an integer from ${min} to ${max}`);
    }
  }

  /** Istio's Percent: a number (fractions allowed) from 0 to 100. */
  percentage(field: string, value: unknown): asserts value is number {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) {
      this.fail(field, value, 'a percentage from 0 to 100');
    }
  }

  port(field: string, value: unknown): asserts value is number {
    this.integer(field, value, 1, 65535);
  }

  oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): asserts value is T {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(field, value, `one of ${allowed.join(', ')}`);
    }
  }

  /**
   * The JavaScript types of an object's fields, before any finer check reads them, so
   * that a wrong type is a MeshValidationError and never a TypeError further down.
   * A kind ending in `?` may be left out (undefined); null is never accepted.
   */
  shape(prefix: string, value: unknown, spec: Readonly<Record<string, ShapeKind>>): void {
    this.object(prefix || 'props', value);
    for (const [key, kind] of Object.entries(spec)) {
      const v = value[key];
      const field = prefix ? `${prefix}.${key}` : key;
      const optional = kind.endsWith('?');
      if (v === undefined && optional) continue;
      const base = (optional ? kind.slice(0, -1) : kind) as ShapeBase;
      if (!SHAPES[base].test(v)) this.fail(field, v, SHAPES[base].expected);
    }
  }

  array(field: string, value: unknown, minLength = 0): asserts value is unknown[] {
    if (!Array.isArray(value) || value.length < minLength) {
      this.fail(field, value, minLength > 0 ? `an array with at least ${minLength} item(s)` : 'an array');
    }
  }
}

type ShapeBase = 'string' | 'boolean' | 'number' | 'object' | 'strings' | 'stringMap' | 'array';
export type ShapeKind = ShapeBase | `${ShapeBase}?`;
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const SHAPES: Record<ShapeBase, { test: (v: unknown) => boolean; expected: string }> = {
  string: { test: (v) => typeof v === 'string' && v.length > 0, expected: 'a non-empty string' },
  boolean: { test: (v) => typeof v === 'boolean', expected: 'true or false' },
  number: { test: (v) => typeof v === 'number' && Number.isFinite(v), expected: 'a number' },
  object: { test: isPlainObject, expected: 'an object' },
  array: { test: Array.isArray, expected: 'an array' },
  strings: { test: (v) => Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0), expected: 'an array of non-empty strings' },
  stringMap: { test: (v) => isPlainObject(v) && Object.values(v).every((x) => typeof x === 'string'), expected: 'an object of string values' },
};

/**
 * Every refusal of a chart (or an app) at once: a count and the list, each message naming
 * its construct path, value and expectation. Synth, lint and the Pulumi resource throw it
 * before anything is written, so one run shows every problem.
 */
export class MeshRefusals extends Error {
  constructor(public readonly problems: readonly string[], scope = 'the app') {
    super(`${problems.length} problem(s) in ${scope}, refused at synth (nothing is written):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'MeshRefusals';
  }
}

/** The messages of a refusal: one for a MeshValidationError, each one of a MeshRefusals; undefined for anything else (our bug). */
export function refusalMessages(e: unknown): string[] | undefined {
  if (e instanceof MeshRefusals) return [...e.problems];
  if (e instanceof MeshValidationError) return [e.message];
  return undefined;
}

/**
 * Run every step, even after one is refused, and throw the refusals together (a
 * MeshRefusals) once all have run: a chart with four problems shows four in one run.
 * Anything that is not a refusal is our bug and is rethrown at once.
 */
export function allRefusals<T>(steps: ReadonlyArray<() => T>): T[] {
  const problems: string[] = [];
  const out: T[] = [];
  for (const step of steps) {
    try {
      out.push(step());
    } catch (e) {
      const m = refusalMessages(e);
      if (!m) throw e;
      problems.push(...m);
    }
  }
  if (problems.length) throw new MeshRefusals(problems);
  return out;
}
