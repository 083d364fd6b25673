// vitest's fake timers drive the registry without the `clock` option; the
// scenarios are shared with jest's (__test__/helpers/fake-timer-scenarios.ts).
import { afterEach, describe, expect, it, vi } from 'vitest'
import { fakeTimerScenarios } from './helpers/fake-timer-scenarios'

fakeTimerScenarios({
  name: 'vi.useFakeTimers()',
  describe,
  it,
  expect,
  afterEach,
  useFakeTimers: (now) => vi.useFakeTimers({ now }),
  useRealTimers: () => vi.useRealTimers(),
  advanceTimersByTimeAsync: (ms) => vi.advanceTimersByTimeAsync(ms),
  getTimerCount: () => vi.getTimerCount(),
})
