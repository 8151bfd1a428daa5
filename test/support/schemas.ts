import * as fs from 'fs';
import * as path from 'path';
import Ajv, { ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { Namespace, Service, ConfigMap, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { VirtualService, DestinationRule, Gateway, ServiceEntry } from '@kubernetes-models/istio/networking.istio.io/v1beta1';
import { Telemetry as TelemetryV1alpha1 } from '@kubernetes-models/istio/telemetry.istio.io/v1alpha1';
import { PersistentVolumeClaim } from 'kubernetes-models/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';

/**
 * @kubernetes-models/istio@2 (the last for Node 20) knows Telemetry as v1alpha1 only; v1
 * has the same spec (Istio 1.22 promoted it unchanged). The strict check against Istio's
 * own CRD file below is the one that knows v1.
 */
class TelemetryV1 {
  constructor(private readonly data: any) {}
  validate(): void {
    new TelemetryV1alpha1({ ...this.data, apiVersion: 'telemetry.istio.io/v1alpha1' }).validate();
  }
}
import type { K8sObject } from './synth';

/** kubernetes-models / @kubernetes-models/istio classes by apiVersion and kind. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'networking.istio.io/v1beta1/VirtualService': VirtualService,
  'networking.istio.io/v1beta1/DestinationRule': DestinationRule,
  'networking.istio.io/v1beta1/Gateway': Gateway,
  'networking.istio.io/v1beta1/ServiceEntry': ServiceEntry,
  'telemetry.istio.io/v1/Telemetry': TelemetryV1,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
};

/** Validate one object against the Kubernetes or Istio schema; returns the error text or undefined. */
export function schemaError(obj: K8sObject): string | undefined {
  // No kubernetes-models package for Gateway API runs on Node 20 here: its own CRD schema, strictly.
  // Nor for Argo Rollouts and Flagger: their own CRDs, strictly.
  if (/^(gateway\.networking\.k8s\.io|argoproj\.io|flagger\.app)\//.test(obj.apiVersion)) return crdError(obj);
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) return `no schema known for ${obj.apiVersion} ${obj.kind}`;
  try {
    new Model(obj).validate();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Istio's own CRD file (vendored in crds/, Istio 1.30.3). kubernetes-models ignores
 * unknown fields; the API server prunes them silently. This stricter check rejects any
 * field the CRD does not declare, so a misspelled field cannot slip through.
 */
export const ISTIO_CRD_FILE = process.env.ISTIO_CRD_FILE
  ?? path.resolve(__dirname, '..', '..', 'crds', 'istio-1.30.3', 'crd-all.gen.yaml');

function strict(schema: any): any {
  if (Array.isArray(schema)) return schema.map(strict);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: any = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k.startsWith('x-kubernetes-')) continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([pk, pv]) => [pk, strict(pv)])) : strict(v);
  }
  if (schema.properties && !schema['x-kubernetes-preserve-unknown-fields'] && schema.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  if (schema['x-kubernetes-int-or-string']) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  return out;
}

/** Gateway API's CRDs (vendored in crds/, v1.6.1), one file per release channel. */
export const GATEWAY_API_CRD_FILES = {
  standard: path.resolve(__dirname, '..', '..', 'crds', 'gateway-api-v1.6.1', 'standard-install.yaml'),
  experimental: path.resolve(__dirname, '..', '..', 'crds', 'gateway-api-v1.6.1', 'experimental-install.yaml'),
};

/** The progressive-delivery controllers' CRDs (vendored in crds/): Argo Rollouts v1.9.1, Flagger v1.44.0. */
export const PROGRESSIVE_DELIVERY_CRD_FILES = [
  path.resolve(__dirname, '..', '..', 'crds', 'argo-rollouts-v1.9.1', 'rollout-crd.yaml'),
  path.resolve(__dirname, '..', '..', 'crds', 'argo-rollouts-v1.9.1', 'analysis-template-crd.yaml'),
  path.resolve(__dirname, '..', '..', 'crds', 'flagger-v1.44.0', 'crd.yaml'),
];

const validatorCache = new Map<string, Map<string, ValidateFunction>>();
/** Strict validators by `group/version/Kind` for Istio's CRDs, Gateway API's (standard channel unless asked), Argo Rollouts' and Flagger's. */
export function crdValidators(gatewayApiChannel: 'standard' | 'experimental' = 'standard'): Map<string, ValidateFunction> {
  const cached = validatorCache.get(gatewayApiChannel);
  if (cached) return cached;
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const validators = new Map<string, ValidateFunction>();
  validatorCache.set(gatewayApiChannel, validators);
  const docs = [ISTIO_CRD_FILE, GATEWAY_API_CRD_FILES[gatewayApiChannel], ...PROGRESSIVE_DELIVERY_CRD_FILES].flatMap((f) => parseAllDocuments(fs.readFileSync(f, 'utf8')));
  for (const doc of docs) {
    const crd = doc.toJSON();
    if (crd?.kind !== 'CustomResourceDefinition') continue;
    for (const v of crd.spec.versions) {
      const schema = strict(v.schema.openAPIV3Schema);
      // metadata is the API server's business; check only spec (and the envelope).
      schema.properties.metadata = { type: 'object' };
      schema.properties.apiVersion = { const: `${crd.spec.group}/${v.name}` };
      schema.properties.kind = { const: crd.spec.names.kind };
      validators.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, ajv.compile(schema));
    }
  }
  return validators;
}

export function crdError(obj: K8sObject, gatewayApiChannel: 'standard' | 'experimental' = 'standard'): string | undefined {
  const validate = crdValidators(gatewayApiChannel).get(`${obj.apiVersion}/${obj.kind}`);
  if (!validate) return `no CRD schema for ${obj.apiVersion} ${obj.kind}`;
  if (validate(obj)) return undefined;
  return (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${(e.params as any).additionalProperty})` : ''}`).join('; ');
}
