#!/usr/bin/env node
// scripts/crds-for-1.20.js FILE...: the CRDs in FILEs, written to stdout without the
// `default: ""` entries their schemas carry. The local cluster's API server (1.20) reads an
// empty-string default as null and refuses the whole CRD; the entries only fill in absent
// fields, so validation by the rest of the schema is unchanged, except that a list-map key
// that loses its default must then be given (the server's rule): it is marked required.
// Used by `npm run test:cluster` for Argo Rollouts' and Flagger's CRDs.
'use strict';
const fs = require('fs');
const YAML = require('yaml');

const strip = (v) => {
  if (Array.isArray(v)) return v.map(strip);
  if (v === null || typeof v !== 'object') return v;
  const out = {};
  for (const [k, x] of Object.entries(v)) if (!(k === 'default' && x === '')) out[k] = strip(x);
  const keys = v['x-kubernetes-list-map-keys'];
  if (Array.isArray(keys) && v.items && v.items.properties) {
    const lost = keys.filter((key) => v.items.properties[key] && v.items.properties[key].default === '');
    if (lost.length) out.items.required = [...new Set([...(v.items.required || []), ...lost])];
  }
  return out;
};
const docs = process.argv.slice(2).flatMap((f) => YAML.parseAllDocuments(fs.readFileSync(f, 'utf8')).map((d) => d.toJSON()).filter(Boolean));
process.stdout.write(docs.map((d) => YAML.stringify(strip(d))).join('---\n'));
