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
