import { MeshValidationError } from '../model';

/**
 * Run a synth entry point: a MeshValidationError is the user's input, so print its
 * message (construct path, value, expectation) without a stack trace and exit 1.
 * Anything else is our bug and keeps its stack.
 */
export function runSynth(build: () => void): void {
  try {
    build();
  } catch (e) {
    if (e instanceof MeshValidationError) {
      process.stderr.write(`cdk8s-mesh: ${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
}
