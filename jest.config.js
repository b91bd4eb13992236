// Two projects: the main suite (CPU, always) and the GPU suite, which runs only where a CUDA
// device is usable and otherwise prints one visible "skipped: no CUDA device" line.
const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] },
};
module.exports = {
  projects: [
    { ...common, displayName: 'cpu', testMatch: ['<rootDir>/test/**/*.test.ts'], testPathIgnorePatterns: ['/test/gpu/'] },
    { ...common, displayName: 'gpu', testMatch: ['<rootDir>/test/gpu/**/*.test.ts'] },
  ],
  testTimeout: 120000,
  globalSetup: '<rootDir>/test/global-setup.js',
};
