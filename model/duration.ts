import { Check } from './errors';

const UNIT_NS: Record<string, number> = {
  h: 3_600_000_000_000,
  m: 60_000_000_000,
  s: 1_000_000_000,
  ms: 1_000_000,
  us: 1_000,
  'µs': 1_000,
  ns: 1,
};
// Go's time.ParseDuration form, which Istio (and the CEL `duration()` in its CRDs) accepts.
const PART = /(\d+(?:\.\d+)?|\.\d+)(h|ms|m|s|us|µs|ns)/y;

/**
 * A duration as Istio writes it: `0.002s`, `7s`, `1m`, `1h30m`, `500ms`.
 * Stored as whole nanoseconds; `toIstio()` writes the shortest exact form.
 */
export class Duration {
  /** Parse Istio's form. Throws a plain Error with a reason; `checkDuration` wraps it. */
  static parse(text: string): Duration {
    if (typeof text !== 'string' || text.length === 0) throw new Error('empty duration');
    let ns = 0;
    PART.lastIndex = 0;
    let pos = 0;
    while (pos < text.length) {
      PART.lastIndex = pos;
      const m = PART.exec(text);
      if (!m) throw new Error(`cannot read "${text}" as a duration`);
      ns += Math.round(parseFloat(m[1]) * UNIT_NS[m[2]]);
      pos = PART.lastIndex;
    }
    return new Duration(ns);
  }

  static millis(ms: number): Duration { return new Duration(Math.round(ms * 1_000_000)); }
  static seconds(s: number): Duration { return new Duration(Math.round(s * 1_000_000_000)); }
  static minutes(m: number): Duration { return new Duration(Math.round(m * 60_000_000_000)); }

  private constructor(public readonly nanos: number) {}

  /** The duration in milliseconds (fractional below 1ms). */
  toMilliseconds(): number { return this.nanos / 1_000_000; }

  /** Istio's form: whole hours, minutes or seconds where exact, else seconds with a fraction. */
  toIstio(): string {
    const n = this.nanos;
    if (n !== 0 && n % UNIT_NS.h === 0) return `${n / UNIT_NS.h}h`;
    if (n !== 0 && n % UNIT_NS.m === 0) return `${n / UNIT_NS.m}m`;
    const whole = Math.floor(n / UNIT_NS.s);
    const frac = n % UNIT_NS.s;
    if (frac === 0) return `${whole}s`;
    return `${whole}.${String(frac).padStart(9, '0').replace(/0+$/, '')}s`;
  }

  toString(): string { return this.toIstio(); }
  toJSON(): string { return this.toIstio(); }
}

/**
 * Accept a Duration or Istio's string form, and require at least 1ms
 * (Istio's CRDs reject anything shorter for timeouts, delays and intervals).
 */
export function checkDuration(check: Check, field: string, value: unknown, opts: { zero?: boolean } = {}): Duration {
  let d: Duration | undefined;
  if (value instanceof Duration) d = value;
  else if (typeof value === 'string') {
    try { d = Duration.parse(value); } catch { d = undefined; }
  }
  if (!d || !Number.isSafeInteger(d.nanos)) {
    check.fail(field, value, 'a duration such as "0.002s", "7s", "1m" or Duration.millis(2)');
  }
  if (opts.zero && d.nanos === 0) return d;
  if (d.nanos < 1_000_000) check.fail(field, value, opts.zero ? '0s or a duration of at least 1ms' : 'a duration of at least 1ms');
  return d;
}

const PROMETHEUS_UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3, y: 31536000e3 };

/** A Prometheus duration ("5m", "1h30m", "15d") in milliseconds; undefined when it is not one or is zero. */
export function prometheusDurationMs(d: string): number | undefined {
  if (!/^(\d+(ms|s|m|h|d|w|y))+$/.test(d)) return undefined;
  const ms = [...d.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)].reduce((a, m) => a + Number(m[1]) * PROMETHEUS_UNIT_MS[m[2]], 0);
  return ms > 0 ? ms : undefined;
}
