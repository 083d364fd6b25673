// jest's fake timers drive the registry without the `clock` option; the
// scenarios are shared with vitest's (__test__/helpers/fake-timer-scenarios.ts).
import { afterEach, describe, expect, it, jest } from '@jest/globals'
import { type FakeTimerRunner, fakeTimerScenarios } from '../helpers/fake-timer-scenarios'

fakeTimerScenarios({
  name: 'jest.useFakeTimers()',
  fakesDate: true,
  describe: describe as unknown as FakeTimerRunner['describe'],
  it: it as unknown as FakeTimerRunner['it'],
  expect: expect as unknown as FakeTimerRunner['expect'],
  afterEach: afterEach as unknown as FakeTimerRunner['afterEach'],
  useFakeTimers: (now) => jest.useFakeTimers({ now }),
  useRealTimers: () => jest.useRealTimers(),
  advanceTimersByTimeAsync: (ms) => jest.advanceTimersByTimeAsync(ms),
  getTimerCount: () => jest.getTimerCount(),
})
