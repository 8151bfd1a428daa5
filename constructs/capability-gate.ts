// The chart's side of the capability table (model/capabilities.ts): before a renderer sees a
// route, policy or gateway, every feature it uses is looked up for the chart's data plane.
// What the plane cannot carry is refused, or, when the chart accepts dropping that feature
// (MeshChartProps.dropUnsupported), taken out of the model and recorded for lint and the plan.
import {
  CAPABILITIES, Check, DataPlaneName, feature, FeatureUse, MeshValidationError, supportOf,
} from '../model';

/** A feature a chart let its data plane drop: where it was written, and why it does not apply. */
export interface DroppedFeature {
  /** The construct path of the route, policy or gateway. */
  readonly path: string;
  readonly field: string;
  readonly value: unknown;
  /** The capability table's id (`route.fault`, `policy.outlierDetection`, ...). */
  readonly feature: string;
  readonly dataPlane: string;
  readonly why: string;
}

/** The ids a chart may list in dropUnsupported: the droppable features ('*': all of them). */
export const DROPPABLE_FEATURES: readonly string[] = CAPABILITIES.filter((f) => f.droppable).map((f) => f.id);

/** Check MeshChartProps.dropUnsupported: '*' or droppable feature ids. */
export function checkDropUnsupported(check: Check, value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) check.fail('dropUnsupported', value, `an array of feature ids: "*" or some of ${DROPPABLE_FEATURES.join(', ')}`);
  value.forEach((v, i) => {
    if (v === '*' || DROPPABLE_FEATURES.includes(v as string)) return;
    const known = CAPABILITIES.some((f) => f.id === v);
    check.fail(`dropUnsupported[${i}]`, v, known
      ? `a feature that may be dropped (${DROPPABLE_FEATURES.join(', ')}): without ${v as string} requests would go elsewhere, so it is never dropped`
      : `"*" or a droppable feature id: ${DROPPABLE_FEATURES.join(', ')}`);
  });
  return value as string[];
}

export interface GateResult {
  readonly dropped: readonly DroppedFeature[];
  readonly problems: readonly MeshValidationError[];
}

/**
 * Each use looked up for `plane`: supported (or with a documented difference) passes, an
 * unsupported one is dropped when `accept` lists it (or '*') and it is droppable, else refused.
 */
export function gate(where: string, plane: DataPlaneName, options: Readonly<Record<string, string | undefined>>, accept: readonly string[], uses: readonly FeatureUse[]): GateResult {
  const dropped: DroppedFeature[] = [];
  const problems: MeshValidationError[] = [];
  for (const use of uses) {
    const s = supportOf(use.feature, plane, options);
    if (s.level !== 'unsupported') continue;
    const f = feature(use.feature);
    if (f.droppable && (accept.includes('*') || accept.includes(f.id))) {
      dropped.push({ path: where, field: use.field, value: use.value, feature: f.id, dataPlane: plane, why: s.why });
      continue;
    }
    const drop = f.droppable ? `, or let the chart drop it (MeshChart dropUnsupported: ["${f.id}"]; lint and the plan then list it as not applied)` : '';
    problems.push(new MeshValidationError(where, use.field, use.value, `no ${f.title} on the ${plane} data plane (${s.why}); instead: ${s.instead}${drop}`));
  }
  return { dropped, problems };
}
