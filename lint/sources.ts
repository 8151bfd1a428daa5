// Where manifests come from: a cdk8s App (with construct paths) or YAML files.
import { readFileSync } from 'node:fs';
import { ApiObject, App, Chart } from 'cdk8s';
import { IConstruct } from 'constructs';
import { parseAllDocuments } from 'yaml';
import { MeshValidationError } from '../model/errors';
import { analyze, Finding, K8s, Manifest } from './analyze';

/** Every object of the charts, with the construct path that made it. */
export function manifestsOf(scope: App | Chart): Manifest[] {
  const charts = scope instanceof App ? scope.charts : [scope];
  return charts.flatMap((chart) => chart.node.findAll()
    .filter((c: IConstruct): c is ApiObject => c instanceof ApiObject)
    .map((o) => ({ obj: o.toJson() as K8s, path: o.node.path })));
}

/** Lint charts before they are written; each chart on its own (a chart is one deployable unit). */
export function lintApp(app: App): Finding[] {
  return app.charts.flatMap((c) => analyze(manifestsOf(c)));
}

/** Every document of YAML files; a document that is not an object is reported by the caller. */
export function manifestsFromFiles(files: readonly string[]): Manifest[] {
  return files.flatMap((file) => {
    const docs = parseAllDocuments(readFileSync(file, 'utf8'));
    // A document that does not parse is refused, not linted as nothing (0 findings, exit 0).
    const bad = (Array.isArray(docs) ? docs : [docs]).flatMap((d, i) => d.errors.map((e) => `${file}#${i + 1}: ${e.message.split('\n')[0]}`));
    if (bad.length) throw new MeshValidationError(file, 'YAML', bad.slice(0, 5).join('; '), 'YAML that parses (the file was not linted)');
    return (Array.isArray(docs) ? docs : [docs])
      .map((d, i) => ({ obj: d.toJSON() as K8s, path: `${file}#${i + 1}` }))
      .filter((m) => m.obj !== null && typeof m.obj === 'object');
  });
}
