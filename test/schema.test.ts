import * as fs from 'fs';
import { CHART_VARIANTS } from '../charts';
import { crdError, ISTIO_CRD_FILE, schemaError } from './support/schemas';
import { K8sObject, synthVariant } from './support/synth';

const all: Array<[string, K8sObject]> = CHART_VARIANTS.flatMap((v) => synthVariant(v).map((o) => [v.id, o] as [string, K8sObject]));
const label = (o: K8sObject) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;

describe('every synthesized object validates against its schema', () => {
  const source = (o: K8sObject) => (/^(gateway\.networking\.k8s\.io|argoproj\.io|flagger\.app)\//.test(o.apiVersion) ? 'its CRD schema, no unknown fields' : 'kubernetes-models');
  test.each(all.map(([chart, o]) => [chart, label(o), source(o), o]))('%s: %s (%s)', (_chart, _label, _source, obj) => {
    expect(schemaError(obj as K8sObject)).toBeUndefined();
  });

  const istio = all.filter(([, o]) => o.apiVersion.startsWith('networking.istio.io/'));
  test('Istio\'s CRD file is there (vendored in crds/)', () => {
    expect(fs.existsSync(ISTIO_CRD_FILE)).toBe(true);
  });
  test.each(istio.map(([chart, o]) => [chart, label(o), o]))(
    '%s: %s (Istio CRD schema, no unknown fields)', (_chart, _label, obj) => {
      expect(crdError(obj as K8sObject)).toBeUndefined();
    });
});

describe('the schema checks can fail', () => {
  const vs = all.map(([, o]) => o).find((o) => o.kind === 'VirtualService')!;

  test('a string weight is rejected', () => {
    const bad = JSON.parse(JSON.stringify(vs));
    bad.spec.http[0].route[0].weight = '20';
    expect(schemaError(bad)).toMatch(/weight/);
  });

  test('a Service port without a number is rejected', () => {
    const svc = JSON.parse(JSON.stringify(all.map(([, o]) => o).find((o) => o.kind === 'Service')));
    delete svc.spec.ports[0].port;
    expect(schemaError(svc)).toMatch(/port/);
  });

  test('a misspelled Rollout step and a Canary analysis field of the wrong type are rejected by the controllers\' CRDs', () => {
    const rollout = JSON.parse(JSON.stringify(all.map(([, o]) => o).find((o) => o.kind === 'Rollout')));
    rollout.spec.strategy.canary.steps[0] = { setWieght: 10 };
    expect(schemaError(rollout)).toMatch(/setWieght/);
    const canary = JSON.parse(JSON.stringify(all.map(([, o]) => o).find((o) => o.kind === 'Canary')));
    canary.spec.analysis.stepWeights = ['10'];
    expect(schemaError(canary)).toMatch(/stepWeights\/0 must be number/);
  });

  test('an unknown Istio field and a bad enum are rejected by the CRD check', () => {
    const bad = JSON.parse(JSON.stringify(vs));
    bad.spec.http[0].retryPolicy = { attempts: 3 };
    expect(crdError(bad)).toMatch(/retryPolicy/);
    const dr = JSON.parse(JSON.stringify(all.map(([, o]) => o).find((o) => o.kind === 'DestinationRule')));
    dr.spec.trafficPolicy = { loadBalancer: { simple: 'RANDOMLY' } };
    expect(crdError(dr)).toMatch(/allowed values|must be equal to one of/);
  });
});
