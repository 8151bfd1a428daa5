import { MeshValidationError } from '../model';

/**
 * Run a synth entry point and return its exit status: a MeshValidationError is the
 * user's input, so print its message (construct path, value, expectation) without a
 * stack trace and return 1. Anything else is our bug and keeps its stack.
 */
export function runSynth(build: () => void): number {
  try {
    build();
    return 0;
  } catch (e) {
    if (e instanceof MeshValidationError) {
      process.stderr.write(`cdk8s-mesh: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
