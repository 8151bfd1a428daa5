/**
 * `npm run test:render`: the traffic SVGs drawn by a real browser (Debian's
 * chromium-headless-shell) and measured there: text inside its box, labels clear of
 * boxes and of each other, edges clear of boxes. Kept apart from `npm test`, which
 * needs no browser.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/render'],
  testMatch: ['**/*.render.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  testTimeout: 120000,
};
