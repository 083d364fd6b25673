/** Loads the package the way a consumer's jest suite would. */
module.exports = {
  rootDir: __dirname,
  testMatch: ['<rootDir>/**/*.spec.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: { strict: true, module: 'commonjs', esModuleInterop: true } }] },
  testEnvironment: 'node',
}
