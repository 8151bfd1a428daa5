/**
 * `npm run test:e2e`: the charts as pods on the local cluster (scripts/cluster/).
 * Kept apart from `npm test`, which needs no root, no cluster and no network.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/e2e'],
  testMatch: ['**/*.e2e.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  // One cluster: charts share the default namespace, so suites run one after another.
  maxWorkers: 1,
  testTimeout: 180000,
};
