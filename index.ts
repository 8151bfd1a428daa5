// cdk8s-mesh: the package's main entry (`import { CanaryRelease } from 'cdk8s-mesh'`).
// Constructs and data planes, the traffic model and its validation, and mesh lint.
export * from './constructs';
export * from './model';
export { analyze, CHECKS, formatText, objectKey, duplicateObjects } from './lint/analyze';
export type { CheckInfo, Finding, K8s, Manifest, Severity } from './lint/analyze';
export { lintApp, manifestsFromFiles, manifestsOf } from './lint/sources';
export { lintBeforeWrite, MeshLintError, runSynth } from './apps/run';
