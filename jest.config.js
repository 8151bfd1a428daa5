/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true }] },
  // Snapshots are YAML, written next to the tests, so a pull request shows manifests as reviewers know them.
  snapshotFormat: { escapeString: false, printBasicPrototype: false },
};
