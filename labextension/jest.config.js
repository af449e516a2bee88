/**
 * Unit tests of the extension's pure helpers and of ResourcePanel (test/).
 * ts-jest compiles them with tsconfig.test.json (CommonJS); the component
 * tests ask for jsdom in their own docblock, the rest run in node.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts', '**/*.test.tsx'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  }
};
