import { App } from 'cdk8s';
import { formatText } from '../lint/analyze';
import { validationErrorsOf } from '../constructs/mesh';
import { lintApp } from '../lint/sources';
import { MeshRefusals, MeshValidationError } from '../model';

const CDK8S_VALIDATION = 'Validation failed with the following errors';

/** Mesh lint found errors: nothing was written. */
export class MeshLintError extends Error {}

/**
 * Mesh lint between building the charts and writing them: warnings are printed,
 * errors stop the synth before any file is written (each names its construct path).
 */
export function lintBeforeWrite(app: App): void {
  refuseInvalid(app);
  const findings = lintApp(app);
  const shown = findings.filter((f) => f.severity !== 'info');
  if (shown.length) process.stderr.write(`${formatText(shown)}\n`);
  const errors = findings.filter((f) => f.severity === 'error');
  if (errors.length) throw new MeshLintError(`mesh lint found ${errors.length} error(s); nothing was written (run \`npx cdk8s-mesh lint\` for details)`);
}

/**
 * The constructs' validations, as cdk8s runs them before writing, but all of them at once
 * in our format: a MeshRefusals with the count and every message (construct path, value,
 * expectation). Synth, lint and the Pulumi resource call this first.
 */
export function refuseInvalid(app: App): void {
  const problems = validationErrorsOf(app);
  if (problems.length) throw new MeshRefusals(problems, app.charts.length === 1 ? `chart ${app.charts[0].node.id}` : 'the app');
}

/**
 * Run a synth entry point and return its exit status: a MeshValidationError is the
 * user's input, so print its message (construct path, value, expectation) without a
 * stack trace and return 1; lint errors likewise. Anything else is our bug and keeps its stack.
 */
export function runSynth(build: () => void): number {
  try {
    build();
    return 0;
  } catch (e) {
    if (isRefusal(e)) {
      process.stderr.write(`cdk8s-mesh: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

/**
 * A refusal of the user's input, not our bug: a MeshValidationError, mesh lint errors, the
 * constructs' validations that cdk8s runs before writing anything (duplicate objects,
 * misplaced short hosts: one Error listing them), or YAML that does not parse. Every
 * command answers these the same way: the message, exit status 1.
 */
export function isRefusal(e: unknown): e is Error {
  return e instanceof MeshValidationError || e instanceof MeshRefusals || e instanceof MeshLintError
    || (e instanceof Error && (e.message.startsWith(CDK8S_VALIDATION) || e.name === 'YAMLParseError'));
}
