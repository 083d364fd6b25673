// vitest's fake timers drive the registry without the `clock` option; the
// scenarios are shared with jest's (__test__/helpers/fake-timer-scenarios.ts).
import { afterEach, describe, expect, it, vi } from 'vitest'
import { fakeTimerScenarios } from './helpers/fake-timer-scenarios'

fakeTimerScenarios({
  name: 'vi.useFakeTimers()',
  fakesDate: true,
  describe,
  it,
  expect,
  afterEach,
  useFakeTimers: (now) => vi.useFakeTimers({ now }),
  useRealTimers: () => vi.useRealTimers(),
  advanceTimersByTimeAsync: (ms) => vi.advanceTimersByTimeAsync(ms),
  getTimerCount: () => vi.getTimerCount(),
})

// The same scenarios with every timer faked but `Date`: `Date.now()` is
// the real clock, as under jest's legacy timers.
fakeTimerScenarios({
  name: "vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })",
  fakesDate: false,
  describe,
  it,
  expect,
  afterEach,
  useFakeTimers: () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }),
  useRealTimers: () => vi.useRealTimers(),
  advanceTimersByTimeAsync: (ms) => vi.advanceTimersByTimeAsync(ms),
  getTimerCount: () => vi.getTimerCount(),
})
