// jest's legacy fake timers drive the registry too. They fake the timers but
// not `Date.now()`, so the registry's time moves with its own timers (its
// close deadlines and automatic cleanup), not with `Date.now()`.
import { afterEach, describe, expect, it, jest } from '@jest/globals'
import { type FakeTimerRunner, fakeTimerScenarios } from '../helpers/fake-timer-scenarios'

fakeTimerScenarios({
  name: 'jest.useFakeTimers({ legacyFakeTimers: true })',
  fakesDate: false,
  describe: describe as unknown as FakeTimerRunner['describe'],
  it: it as unknown as FakeTimerRunner['it'],
  expect: expect as unknown as FakeTimerRunner['expect'],
  afterEach: afterEach as unknown as FakeTimerRunner['afterEach'],
  // Legacy timers are one instance per test file: drop what earlier tests left.
  useFakeTimers: () => {
    jest.useFakeTimers({ legacyFakeTimers: true })
    jest.clearAllTimers()
  },
  useRealTimers: () => jest.useRealTimers(),
  // Legacy timers have no async variant: advance, then let promise jobs run.
  advanceTimersByTimeAsync: async (ms) => {
    jest.advanceTimersByTime(ms)
    await Promise.resolve()
  },
  getTimerCount: () => jest.getTimerCount(),
})
