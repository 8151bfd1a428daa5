import { Testing, Yaml } from 'cdk8s';
import { CHART_VARIANTS, createVariant } from '../charts';

// One YAML snapshot per chart and data plane: the exact text `npm run synth` writes to dist/.
// A change here is a change to what gets deployed; review it as such.
describe.each(CHART_VARIANTS.map((v) => [v.id, v]))('chart %s', (_id, v) => {
  test('synthesizes to the reviewed YAML', () => {
    const chart = createVariant(Testing.app(), v);
    expect(Yaml.stringify(...Testing.synth(chart))).toMatchSnapshot();
  });
});

/**
 * Deployments as the API server stores them (it writes "1" for "1000m" and "1Gi" for
 * "1024Mi", and omits minReadySeconds 0 and hostNetwork false): otherwise every
 * `kubectl apply` of an unchanged chart reports its Deployments "configured" (seen on
 * the local cluster) and diffing tools see a change that is not one.
 */
function serverForm(q: string): string {
  const m = /^(\d+)(m|Mi|Gi|Ti)?$/.exec(q);
  if (!m) return q;
  let n = Number(m[1]);
  let unit = m[2] ?? '';
  if (unit === 'm' && n % 1000 === 0) { n /= 1000; unit = ''; }
  const binary = ['Mi', 'Gi', 'Ti'];
  while (binary.includes(unit) && unit !== 'Ti' && n % 1024 === 0) { n /= 1024; unit = binary[binary.indexOf(unit) + 1]; }
  return `${n}${unit}`;
}

test.each(CHART_VARIANTS.map((v) => [v.id, v]))('chart %s writes Deployments in the server\'s form: its quantities, none of the zero values it omits', (_id, v) => {
  const quantities: string[] = [];
  const zeros: string[] = [];
  for (const o of Testing.synth(createVariant(Testing.app(), v))) {
    if (o.kind === 'Deployment') {
      if (o.spec.minReadySeconds === 0) zeros.push(`${o.metadata.name}: minReadySeconds 0`);
      if (o.spec.template.spec.hostNetwork === false) zeros.push(`${o.metadata.name}: hostNetwork false`);
    }
    for (const c of o.spec?.template?.spec?.containers ?? []) {
      for (const kind of ['requests', 'limits']) for (const q of Object.values(c.resources?.[kind] ?? {})) quantities.push(String(q));
    }
  }
  expect(quantities.length).toBeGreaterThan(0);
  expect(quantities.filter((q) => serverForm(q) !== q)).toEqual([]);
  expect(zeros).toEqual([]);
});
