// Choosing among weighted destinations.

export type PickStrategy = 'round-robin' | 'random';

export interface Picker {
  /** Index of the destination for the next request. */
  next(): number;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * nginx's smooth weighted round robin over weights divided by their GCD: with
 * 70/30 every run of 10 requests has exactly 7 and 3, interleaved (not 7 in a row).
 */
export class SmoothWeightedRoundRobin implements Picker {
  private readonly weights: number[];
  private readonly current: number[];
  private readonly total: number;

  constructor(weights: readonly number[]) {
    const g = weights.reduce((acc, w) => (w > 0 ? gcd(acc, w) : acc), 0) || 1;
    this.weights = weights.map((w) => w / g);
    this.current = weights.map(() => 0);
    this.total = this.weights.reduce((s, w) => s + w, 0);
  }

  next(): number {
    let best = -1;
    for (let i = 0; i < this.weights.length; i++) {
      if (this.weights[i] === 0) continue;
      this.current[i] += this.weights[i];
      if (best < 0 || this.current[i] > this.current[best]) best = i;
    }
    this.current[best] -= this.total;
    return best;
  }
}

/** Independent draws in proportion to the weights (Envoy's behaviour). */
export class WeightedRandom implements Picker {
  private readonly cumulative: number[];

  constructor(weights: readonly number[], private readonly random: () => number = Math.random) {
    let sum = 0;
    this.cumulative = weights.map((w) => (sum += w));
  }

  next(): number {
    const x = this.random() * this.cumulative[this.cumulative.length - 1];
    const i = this.cumulative.findIndex((c) => x < c);
    return i < 0 ? this.cumulative.length - 1 : i;
  }
}

export function newPicker(weights: readonly number[], strategy: PickStrategy): Picker {
  if (weights.length === 1) return { next: () => 0 };
  return strategy === 'random' ? new WeightedRandom(weights) : new SmoothWeightedRoundRobin(weights);
}
