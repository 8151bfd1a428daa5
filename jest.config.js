/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Type errors are the type-check's job (npm run typecheck); jest transpiles each file alone (isolatedModules in tsconfig).
  transform: { '^.+\\.ts$': 'ts-jest' },
  // Snapshots are YAML, written next to the tests, so a pull request shows manifests as reviewers know them.
  snapshotFormat: { escapeString: false, printBasicPrototype: false },
};
