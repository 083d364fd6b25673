// node:test's mock timers drive the registry without the `clock` option: its
// timers and its time are `globalThis.setTimeout`, `clearTimeout` and
// `Date.now()` as they are at the moment it uses them.
import { afterEach, beforeEach, describe, it, mock } from 'node:test'
import assert from 'node:assert/strict'
import { NitySessionRegistry } from 'nity-session-registry'

const T0 = 1_000_000

/** Lets promise callbacks run between ticks of the mock clock (setImmediate is not mocked). */
const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** Moves mock time forward half a second at a time, settling in between. */
async function advance(ms) {
  for (let passed = 0; passed < ms; passed += 500) {
    mock.timers.tick(Math.min(500, ms - passed))
    await settle()
  }
}

/** A promise's state, followed without awaiting it (an expected rejection is never unhandled). */
function track(promise) {
  const state = { settled: false, rejected: false, value: undefined, error: undefined }
  promise.then(
    (value) => {
      state.settled = true
      state.value = value
    },
    (error) => {
      state.settled = true
      state.rejected = true
      state.error = error
    },
  )
  return state
}

/** Awaits a registry call that may wait on (mock) timers of its own. */
async function finish(promise) {
  const state = track(promise)
  for (let i = 0; i < 10 && !state.settled; i++) {
    mock.timers.tick(0)
    await settle()
  }
  assert.equal(state.settled, true, 'the call settled')
  return promise
}

/** A session with the documented shape that counts its close() and getHealth() calls. */
function session(id, close = () => {}) {
  const s = {
    id,
    closeCalls: 0,
    healthCalls: 0,
    running: false,
    health: { state: 'idle', errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: 0 },
    close() {
      s.closeCalls += 1
      return close()
    },
    getHealth() {
      s.healthCalls += 1
      return s.health
    },
    isRunning: () => s.running,
    sendTask: async () => ({ output: '' }),
  }
  return s
}

const never = () => new Promise(() => {})

// Two ways to turn mock timers on: with `Date` (Date.now() is mock time) and
// without (Date.now() is the real clock; the registry's time then moves with
// its own timers, see lib/time.ts).
const modes = [
  { name: "mock.timers.enable({ apis: ['setTimeout', 'Date'] })", apis: ['setTimeout', 'Date'], fakesDate: true },
  { name: "mock.timers.enable({ apis: ['setTimeout'] })", apis: ['setTimeout'], fakesDate: false },
]

/** The mode of the describe block running now. */
let mode = modes[0]

/** Mock timers first, then a registry (no `clock`) that records its close events. */
function setUp(options) {
  enable()
  const events = []
  const registry = new NitySessionRegistry({ ...options, onSessionClosed: (event) => events.push(event) })
  return { registry, events }
}

/** Only the fields of a close event that do not depend on how long the close took. */
const brief = ({ durationMs, ...rest }) => {
  assert.equal(typeof durationMs, 'number')
  return rest
}

function enable() {
  mock.timers.enable(mode.fakesDate ? { apis: mode.apis, now: T0 } : { apis: mode.apis })
}

afterEach(() => {
  mock.timers.reset()
})

for (const current of modes)
  describe(`${current.name} drives the registry without the clock option`, () => {
    const withFakeDate = current.fakesDate ? it : it.skip
    const withFrozenDate = current.fakesDate ? it.skip : it
    beforeEach(() => {
      mode = current
    })

    withFrozenDate("Date.now() is not mocked: the registry's time still moves as its own timers fire", async () => {
      const { registry } = setUp({ cleanupIntervalMs: 1_000 })
      registry.register('c', session('s1'))
      const { registeredAt } = registry.getSessionInfo('s1')
      await advance(2_500) // the automatic cleanup ran at 1 s and 2 s
      assert.equal(registry.touch('s1'), true)
      const moved = registry.getSessionInfo('s1').lastActivityAt - registeredAt
      // Two runs' intervals, less the moment between arming the first and registering.
      assert.ok(moved > 1_900 && moved < 3_000, `the registry's time moved ${moved} ms`)
      await finish(registry.dispose())
    })

    withFakeDate("the registry's time is Date.now(): registeredAt and lastActivityAt are mock time", async () => {
      const { registry } = setUp({})
      registry.register('c', session('s1'))
      assert.equal(registry.getSessionInfo('s1').registeredAt, T0)
      assert.equal(registry.getSessionInfo('s1').lastActivityAt, T0)
      await advance(2_500)
      assert.equal(registry.touch('s1'), true)
      assert.equal(registry.getSessionInfo('s1').registeredAt, T0)
      assert.equal(registry.getSessionInfo('s1').lastActivityAt, T0 + 2_500)
      await finish(registry.dispose())
    })

    it('the automatic cleanup closes a session idle past idleTimeoutMs with reason idle, and keeps one inside it', async () => {
      const { registry, events } = setUp({ cleanupIntervalMs: 1_000, idleTimeoutMs: 5_000 })
      const old = session('old')
      registry.register('c', old)
      await advance(3_500)
      assert.ok(old.healthCalls >= 3, `runs at 1 s, 2 s and 3 s asked for health (${old.healthCalls} calls)`)
      const fresh = session('fresh')
      registry.register('c', fresh)

      await advance(1_000) // 4.5 s: old has been idle 4.5 s, inside the timeout
      assert.deepEqual(events, [])
      assert.equal(old.closeCalls, 0)
      assert.deepEqual(registry.getStats(), { totalSessions: 2, activeClients: 1, sessionsByClient: { c: 2 } })

      await advance(2_000) // 6.5 s: the run at 6 s finds old idle 6 s, fresh idle 2.5 s
      assert.equal(old.closeCalls, 1)
      assert.equal(fresh.closeCalls, 0)
      assert.deepEqual(events.map(brief), [{ sessionId: 'old', clientId: 'c', reason: 'idle' }])
      assert.equal(registry.getSessionInfo('old'), undefined)
      assert.notEqual(registry.getSessionInfo('fresh'), undefined)
      assert.equal(registry.getMetrics().closesByReason.idle, 1)
      assert.deepEqual(registry.getStats(), { totalSessions: 1, activeClients: 1, sessionsByClient: { c: 1 } })

      assert.equal(await finish(registry.dispose()), 1)
    })

    it('a running session is not closed for being idle', async () => {
      const { registry, events } = setUp({ cleanupIntervalMs: 1_000, idleTimeoutMs: 5_000 })
      const busy = session('busy')
      busy.running = true
      registry.register('c', busy)
      await advance(8_000)
      assert.ok(busy.healthCalls >= 7, `a run every second asked for health (${busy.healthCalls} calls)`)
      assert.equal(busy.closeCalls, 0)
      assert.deepEqual(events, [])
      await finish(registry.dispose())
    })

    it('a getHealth() in state error is closed with reason cleanupStale on the next run', async () => {
      const { registry, events } = setUp({ cleanupIntervalMs: 1_000, idleTimeoutMs: 5_000 })
      const broken = session('broken')
      const fine = session('fine')
      registry.register('c', broken)
      registry.register('c', fine)
      await advance(2_500) // runs at 1 s and 2 s found both healthy
      assert.equal(broken.healthCalls, 2)
      assert.deepEqual(events, [])

      broken.health = { ...broken.health, state: 'error', errorCount: 1 }
      await advance(400) // 2.9 s: no run since
      assert.equal(broken.closeCalls, 0)
      await advance(600) // 3.5 s: the run at 3 s
      assert.equal(broken.closeCalls, 1)
      assert.equal(fine.closeCalls, 0)
      assert.deepEqual(events.map(brief), [{ sessionId: 'broken', clientId: 'c', reason: 'cleanupStale' }])
      const left = registry.getClientSessions('c')
      assert.equal(left.length, 1)
      assert.equal(left[0], fine)

      assert.equal(await finish(registry.dispose()), 1)
    })

    it('closeTimeoutMs: an unregister whose close never settles rejects with ERR_CLOSE_TIMEOUT at the mock deadline', async () => {
      const { registry, events } = setUp({ closeTimeoutMs: 1_000 })
      registry.register('c', session('stuck', never))
      const closing = track(registry.unregister('stuck'))
      assert.equal(registry.getSession('stuck'), undefined)
      mock.timers.tick(999)
      await settle()
      assert.equal(closing.settled, false)
      mock.timers.tick(1)
      await settle()
      assert.equal(closing.rejected, true)
      assert.equal(closing.error?.code, 'ERR_CLOSE_TIMEOUT')
      assert.ok(closing.error instanceof Error)
      assert.equal(events.length, 1)
      assert.deepEqual(brief(events[0]), {
        sessionId: 'stuck',
        clientId: 'c',
        reason: 'unregister',
        timedOut: true,
        error: closing.error,
      })
      assert.equal(events[0].error, closing.error)
      assert.equal(registry.getMetrics().closeTimeouts, 1)
      await finish(registry.dispose())
    })

    it('closeTimeoutMs also bounds bulk cleanups on mock time', async () => {
      const { registry, events } = setUp({ closeTimeoutMs: 2_000 })
      registry.register('c', session('stuck', never))
      registry.register('c', session('quick'))
      const cleanup = track(registry.cleanupClient('c'))
      await advance(1_500)
      assert.equal(cleanup.settled, false)
      await advance(1_000)
      assert.equal(cleanup.settled, true)
      assert.equal(cleanup.value, 2)
      const stuck = events.find((event) => event.sessionId === 'stuck')
      assert.equal(stuck?.timedOut, true)
      assert.equal(stuck?.error?.code, 'ERR_CLOSE_TIMEOUT')
      await finish(registry.dispose())
    })

    it('uses the timer functions current when it arms a timer: a registry made before the mock timers were enabled', async () => {
      const registry = new NitySessionRegistry({ closeTimeoutMs: 1_000 })
      enable()
      registry.register('c', session('stuck', never))
      if (mode.fakesDate) assert.equal(registry.getSessionInfo('stuck').registeredAt, T0)
      const closing = track(registry.unregister('stuck'))
      await advance(1_000)
      assert.equal(closing.rejected, true)
      assert.equal(closing.error?.code, 'ERR_CLOSE_TIMEOUT')
    })

    it('stopAutoCleanup() stops the runs; startAutoCleanup() starts them again on mock time', async () => {
      const { registry, events } = setUp({ cleanupIntervalMs: 1_000 })
      const broken = session('broken')
      broken.health = { ...broken.health, state: 'error' }
      registry.register('c', broken)
      registry.stopAutoCleanup()
      await advance(10_000)
      assert.equal(broken.healthCalls, 0)
      assert.equal(broken.closeCalls, 0)
      assert.deepEqual(events, [])

      registry.startAutoCleanup()
      await advance(500)
      assert.equal(broken.closeCalls, 0)
      await advance(1_000)
      assert.equal(broken.closeCalls, 1)
      assert.deepEqual(events.map(brief), [{ sessionId: 'broken', clientId: 'c', reason: 'cleanupStale' }])
      await finish(registry.dispose())
    })

    it('dispose() stops the automatic cleanup', async () => {
      const { registry, events } = setUp({ cleanupIntervalMs: 1_000, idleTimeoutMs: 5_000 })
      const s1 = session('s1')
      registry.register('c', s1)
      await advance(1_500)
      assert.equal(s1.healthCalls, 1)
      assert.equal(await finish(registry.dispose()), 1)
      assert.deepEqual(events.map(brief), [{ sessionId: 's1', clientId: 'c', reason: 'shutdown' }])
      await advance(10_000)
      assert.equal(s1.healthCalls, 1)
      assert.equal(events.length, 1)
    })
  })
