// The README's "Testing your code that uses the registry" recipes, under vitest.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { NitySessionRegistry, type NitySessionClock, type NitySessionHandle } from 'nity-session-registry'

/** The README's clock: the test's own timer functions, looked up when called, so fake timers drive them. */
const testClock: NitySessionClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}

function session(id: string, close: () => Promise<void> | void = () => {}): NitySessionHandle {
  return {
    id,
    close,
    getHealth: () => ({ state: 'idle', errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: Date.now() }),
    isRunning: () => false,
    sendTask: async () => ({ output: '' }),
  }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('testing code that uses the registry, under vitest', () => {
  it('matches a thrown error by its code', () => {
    const registry = new NitySessionRegistry()
    expect(() => registry.register('', session('s1'))).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CLIENT_ID' }),
    )
  })

  it('matches a rejection by its code, with fake timers driving the close deadline', async () => {
    vi.useFakeTimers()
    const registry = new NitySessionRegistry({ clock: testClock, closeTimeoutMs: 1_000 })
    registry.register(
      'client-a',
      session('s1', () => new Promise<void>(() => {})),
    )
    const outcome = expect(registry.unregister('s1')).rejects.toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
    await vi.advanceTimersByTimeAsync(1_000)
    await outcome
  })

  it('drives the automatic cleanup and the idle timeout with vi.useFakeTimers()', async () => {
    vi.useFakeTimers()
    const closed: string[] = []
    const registry = new NitySessionRegistry({ clock: testClock, cleanupIntervalMs: 1_000, idleTimeoutMs: 5_000 })
    registry.register(
      'client-a',
      session('s1', () => void closed.push('s1')),
    )
    await vi.advanceTimersByTimeAsync(4_000)
    expect(registry.getSession('s1')).toBeDefined()
    await vi.advanceTimersByTimeAsync(7_000)
    expect(closed).toEqual(['s1'])
    expect(registry.getStats().totalSessions).toBe(0)
    await registry.dispose()
  })
})
