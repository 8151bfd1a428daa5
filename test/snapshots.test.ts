import { Testing, Yaml } from 'cdk8s';
import { CHARTS } from '../charts';

// One YAML snapshot per chart: the exact text `npm run synth` writes to dist/.
// A change here is a change to what gets deployed; review it as such.
describe.each(CHARTS.map((c) => [c.name, c]))('chart %s', (_name, entry) => {
  test('synthesizes to the reviewed YAML', () => {
    const chart = entry.create(Testing.app(), entry.name);
    expect(Yaml.stringify(...Testing.synth(chart))).toMatchSnapshot();
  });
});
