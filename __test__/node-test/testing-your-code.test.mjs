// The README's "Testing your code that uses the registry" recipes, under node:test.
import { afterEach, describe, it, mock } from 'node:test'
import assert from 'node:assert/strict'
import { NitySessionRegistry } from 'nity-session-registry'

/** The README's clock: the test's own timer functions, looked up when called, so mock timers drive them. */
const testClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle),
}

/** Lets promise callbacks run between ticks of the mock clock (setImmediate is not mocked). */
const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** Moves mock time forward a second at a time, settling in between, as the async fake timers of jest and vitest do. */
async function advance(ms) {
  for (let passed = 0; passed < ms; passed += 1_000) {
    mock.timers.tick(Math.min(1_000, ms - passed))
    await settle()
  }
}

function session(id, close = () => {}) {
  return {
    id,
    close,
    getHealth: () => ({ state: 'idle', errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: Date.now() }),
    isRunning: () => false,
    sendTask: async () => ({ output: '' }),
  }
}

afterEach(() => {
  mock.timers.reset()
})

describe('testing code that uses the registry, under node:test', () => {
  it('matches a thrown error by its code', () => {
    const registry = new NitySessionRegistry()
    assert.throws(() => registry.register('', session('s1')), { code: 'ERR_INVALID_CLIENT_ID' })
  })

  it('matches a rejection by its code, with mock timers driving the close deadline', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 })
    const registry = new NitySessionRegistry({ clock: testClock, closeTimeoutMs: 1_000 })
    registry.register(
      'client-a',
      session('s1', () => new Promise(() => {})),
    )
    const outcome = assert.rejects(registry.unregister('s1'), { code: 'ERR_CLOSE_TIMEOUT' })
    await advance(1_000)
    await outcome
  })

  it('drives the automatic cleanup and the idle timeout with mock.timers', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 })
    const closed = []
    const registry = new NitySessionRegistry({ clock: testClock, cleanupIntervalMs: 1_000, idleTimeoutMs: 5_000 })
    registry.register(
      'client-a',
      session('s1', () => void closed.push('s1')),
    )
    await advance(4_000)
    assert.notEqual(registry.getSession('s1'), undefined)
    await advance(7_000)
    assert.deepEqual(closed, ['s1'])
    assert.equal(registry.getStats().totalSessions, 0)
    await registry.dispose()
  })
})
