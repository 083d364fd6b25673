// The fake-timer scenarios, run under vitest (__test__/fake-timers.test.ts)
// and jest (__test__/jest/fake-timers.spec.ts) alike: the runner's fake
// timers drive the registry without the `clock` option, because its timers
// and its time are `globalThis.setTimeout`, `clearTimeout` and `Date.now()`
// as they are at the moment it uses them.
import type { afterEach as AfterEach, describe as Describe, expect as Expect, it as It } from 'vitest'
import {
  NitySessionRegistry,
  type NitySessionClosedEvent,
  type NitySessionRegistryOptions,
} from 'nity-session-registry'
import { FakeSession } from './sessions'

/** What a test runner lends the scenarios. */
export interface FakeTimerRunner {
  /** How the runner's fake timers are turned on, for test names. */
  name: string
  /**
   * Whether these fake timers fake `Date.now()` too. jest's legacy timers
   * and timers faked without `Date` do not: the registry's time then moves
   * with its own timers only (see lib/time.ts).
   */
  fakesDate: boolean
  describe: typeof Describe
  it: typeof It
  expect: typeof Expect
  afterEach: typeof AfterEach
  useFakeTimers(now: number): void
  useRealTimers(): void
  advanceTimersByTimeAsync(ms: number): Promise<unknown>
  getTimerCount(): number
}

export function fakeTimerScenarios(runner: FakeTimerRunner): void {
  const { afterEach, describe, expect, it } = runner

  /** Captured before any test installs fake timers: the real one. */
  const realSetImmediate = setImmediate

  const T0 = 1_000_000

  /** Lets promise callbacks (and anything waiting on a real or fake immediate) run, without moving fake time. */
  async function settle(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => realSetImmediate(resolve))
      await runner.advanceTimersByTimeAsync(0)
    }
  }

  /** Moves fake time forward half a second at a time, settling in between. */
  async function advance(ms: number): Promise<void> {
    for (let passed = 0; passed < ms; passed += 500) {
      await runner.advanceTimersByTimeAsync(Math.min(500, ms - passed))
      await settle()
    }
  }

  /** A promise's state, followed without awaiting it (an expected rejection is never unhandled). */
  function track<T>(promise: Promise<T>): { settled: boolean; rejected: boolean; value?: T; error?: unknown } {
    const state: { settled: boolean; rejected: boolean; value?: T; error?: unknown } = {
      settled: false,
      rejected: false,
    }
    promise.then(
      (value) => {
        state.settled = true
        state.value = value
      },
      (error: unknown) => {
        state.settled = true
        state.rejected = true
        state.error = error
      },
    )
    return state
  }

  /** Awaits a registry call that may wait on (fake) timers of its own. */
  async function finish<T>(promise: Promise<T>): Promise<T> {
    const state = track(promise)
    for (let i = 0; i < 10 && !state.settled; i++) await settle()
    expect(state.settled).toBe(true)
    return promise
  }

  /** A FakeSession that counts its `getHealth()` calls: one per stale scan. */
  class CountingSession extends FakeSession {
    healthCalls = 0

    override getHealth() {
      this.healthCalls += 1
      return super.getHealth()
    }
  }

  /** Fake timers first, then a registry (no `clock`) that records its close events. */
  function setUp(options: NitySessionRegistryOptions) {
    runner.useFakeTimers(T0)
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<CountingSession>({
      ...options,
      onSessionClosed: (event) => events.push(event),
    })
    return { registry, events }
  }

  afterEach(() => {
    runner.useRealTimers()
  })

  /** Tests for timers that fake `Date.now()` too, and for those that do not. */
  const withFakeDate = runner.fakesDate ? it : it.skip
  const withFrozenDate = runner.fakesDate ? it.skip : it

  describe(`${runner.name} drives the registry without the clock option`, () => {
    withFrozenDate("Date.now() is not faked: the registry's time still moves as its own timers fire", async () => {
      const { registry } = setUp({ cleanupIntervalMs: 1_000 })
      registry.register('c', new CountingSession('s1'))
      const { registeredAt } = registry.getSessionInfo('s1')!
      await advance(2_500) // the automatic cleanup ran at 1 s and 2 s
      expect(registry.touch('s1')).toBe(true)
      const { lastActivityAt } = registry.getSessionInfo('s1')!
      // Two runs' intervals, less the moment between arming the first and registering.
      expect(lastActivityAt - registeredAt).toBeGreaterThan(1_900)
      // Far less than the next run away: the timers, not the real clock, moved it.
      expect(lastActivityAt - registeredAt).toBeLessThan(3_000)
      await finish(registry.dispose())
    })

    withFakeDate("the registry's time is Date.now(): registeredAt and lastActivityAt are fake time", async () => {
      const { registry } = setUp({})
      registry.register('c', new CountingSession('s1'))
      expect(registry.getSessionInfo('s1')).toMatchObject({ registeredAt: T0, lastActivityAt: T0 })
      await advance(2_500)
      expect(registry.touch('s1')).toBe(true)
      expect(registry.getSessionInfo('s1')).toMatchObject({ registeredAt: T0, lastActivityAt: T0 + 2_500 })
      await finish(registry.dispose())
    })

    it('the automatic cleanup closes a session idle past idleTimeoutMs with reason idle, and keeps one inside it', async () => {
      const { registry, events } = setUp({ cleanupIntervalMs: 1_000, idleTimeoutMs: 5_000 })
      const old = new CountingSession('old')
      registry.register('c', old)
      await advance(3_500)
      expect(old.healthCalls).toBeGreaterThanOrEqual(3) // runs at 1 s, 2 s and 3 s
      const fresh = new CountingSession('fresh')
      registry.register('c', fresh)

      await advance(1_000) // 4.5 s: old has been idle 4.5 s, inside the timeout
      expect(events).toEqual([])
      expect(old.closeCalls).toBe(0)
      expect(registry.getStats()).toEqual({ totalSessions: 2, activeClients: 1, sessionsByClient: { c: 2 } })

      await advance(2_000) // 6.5 s: the run at 6 s finds old idle 6 s, fresh idle 2.5 s
      expect(old.closeCalls).toBe(1)
      expect(fresh.closeCalls).toBe(0)
      expect(events).toEqual([{ sessionId: 'old', clientId: 'c', reason: 'idle', durationMs: expect.any(Number) }])
      expect(registry.getSessionInfo('old')).toBeUndefined()
      expect(registry.getSessionInfo('fresh')).toBeDefined()
      expect(registry.getMetrics().closesByReason.idle).toBe(1)
      expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { c: 1 } })

      await expect(finish(registry.dispose())).resolves.toBe(1)
    })

    it('a running session is not closed for being idle', async () => {
      const { registry, events } = setUp({ cleanupIntervalMs: 1_000, idleTimeoutMs: 5_000 })
      const busy = new CountingSession('busy')
      busy.running = true
      registry.register('c', busy)
      await advance(8_000)
      expect(busy.healthCalls).toBeGreaterThanOrEqual(7)
      expect(busy.closeCalls).toBe(0)
      expect(events).toEqual([])
      await finish(registry.dispose())
    })

    it('a getHealth() in state error is closed with reason cleanupStale on the next run', async () => {
      const { registry, events } = setUp({ cleanupIntervalMs: 1_000, idleTimeoutMs: 5_000 })
      const broken = new CountingSession('broken')
      const fine = new CountingSession('fine')
      registry.register('c', broken)
      registry.register('c', fine)
      await advance(2_500) // runs at 1 s and 2 s found both healthy
      expect(broken.healthCalls).toBe(2)
      expect(events).toEqual([])

      broken.health = { ...broken.health, state: 'error', errorCount: 1 }
      await advance(400) // 2.9 s: no run since
      expect(broken.closeCalls).toBe(0)
      await advance(600) // 3.5 s: the run at 3 s
      expect(broken.closeCalls).toBe(1)
      expect(fine.closeCalls).toBe(0)
      expect(events).toEqual([
        { sessionId: 'broken', clientId: 'c', reason: 'cleanupStale', durationMs: expect.any(Number) },
      ])
      expect(registry.getClientSessions('c')).toEqual([fine])

      await expect(finish(registry.dispose())).resolves.toBe(1)
    })

    it('closeTimeoutMs: an unregister whose close never settles rejects with ERR_CLOSE_TIMEOUT at the fake deadline', async () => {
      const { registry, events } = setUp({ closeTimeoutMs: 1_000 })
      registry.register('c', new CountingSession('stuck', { kind: 'never' }))
      const closing = track(registry.unregister('stuck'))
      expect(registry.getSession('stuck')).toBeUndefined()
      await runner.advanceTimersByTimeAsync(999)
      await settle()
      expect(closing.settled).toBe(false)
      await runner.advanceTimersByTimeAsync(1)
      await settle()
      expect(closing.rejected).toBe(true)
      expect(closing.error).toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
      expect(events).toEqual([
        {
          sessionId: 'stuck',
          clientId: 'c',
          reason: 'unregister',
          durationMs: expect.any(Number),
          timedOut: true,
          error: closing.error,
        },
      ])
      expect(registry.getMetrics().closeTimeouts).toBe(1)
      await finish(registry.dispose())
    })

    it('closeTimeoutMs also bounds bulk cleanups on fake time', async () => {
      const { registry, events } = setUp({ closeTimeoutMs: 2_000 })
      registry.register('c', new CountingSession('stuck', { kind: 'never' }))
      registry.register('c', new CountingSession('quick'))
      const cleanup = track(registry.cleanupClient('c'))
      await advance(1_500)
      expect(cleanup.settled).toBe(false)
      await advance(1_000)
      expect(cleanup.settled).toBe(true)
      expect(cleanup.value).toBe(2)
      expect(events.find((event) => event.sessionId === 'stuck')).toMatchObject({
        timedOut: true,
        error: { code: 'ERR_CLOSE_TIMEOUT' },
      })
      await finish(registry.dispose())
    })

    it('uses the timer functions current when it arms a timer: a registry made before the fake timers were installed', async () => {
      const registry = new NitySessionRegistry<CountingSession>({ closeTimeoutMs: 1_000 })
      runner.useFakeTimers(T0)
      registry.register('c', new CountingSession('stuck', { kind: 'never' }))
      if (runner.fakesDate) expect(registry.getSessionInfo('stuck')).toMatchObject({ registeredAt: T0 })
      const closing = track(registry.unregister('stuck'))
      await advance(1_000)
      expect(closing.rejected).toBe(true)
      expect(closing.error).toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
    })

    it('stopAutoCleanup() stops the runs; startAutoCleanup() starts them again on fake time', async () => {
      const { registry, events } = setUp({ cleanupIntervalMs: 1_000 })
      const broken = new CountingSession('broken')
      broken.health = { ...broken.health, state: 'error' }
      registry.register('c', broken)
      expect(runner.getTimerCount()).toBeGreaterThan(0) // the first run, armed on the fake setTimeout
      registry.stopAutoCleanup()
      expect(runner.getTimerCount()).toBe(0)
      await advance(10_000)
      expect(broken.healthCalls).toBe(0)
      expect(broken.closeCalls).toBe(0)
      expect(events).toEqual([])

      registry.startAutoCleanup()
      await advance(500)
      expect(broken.closeCalls).toBe(0)
      await advance(1_000)
      expect(broken.closeCalls).toBe(1)
      expect(events).toMatchObject([{ sessionId: 'broken', reason: 'cleanupStale' }])
      await finish(registry.dispose())
    })

    it('dispose() stops the automatic cleanup and leaves no fake timer armed', async () => {
      const { registry, events } = setUp({ cleanupIntervalMs: 1_000, idleTimeoutMs: 5_000 })
      // A close that returns nothing: no close deadline is armed, so the only
      // timer is the automatic cleanup's.
      const session = new CountingSession('s1', { kind: 'sync' })
      registry.register('c', session)
      await advance(1_500)
      expect(session.healthCalls).toBe(1)
      await expect(finish(registry.dispose())).resolves.toBe(1)
      expect(events).toMatchObject([{ sessionId: 's1', reason: 'shutdown' }])
      expect(runner.getTimerCount()).toBe(0)
      await advance(10_000)
      expect(session.healthCalls).toBe(1)
      expect(events).toHaveLength(1)
    })
  })
}
