import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.ts'],
    // Each test file gets its own process, and with it its own copy of the
    // native module: nothing one file does to the addon can leak into another.
    pool: 'forks',
    poolOptions: { forks: { execArgv: ['--expose-gc'] } },
    isolate: true,
    // A slow, loaded two-core machine must pass too.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})
