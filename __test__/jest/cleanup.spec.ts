// unregister, cleanupClient, cleanupStale, closeAll, dispose and the close
// hooks, under jest: jest runs each test file in its own vm context, so the
// promises the registry returns, the errors they reject with and the events
// it hands the hooks must be of the caller's realm, as they are in plain Node.
import { afterEach, describe, expect, it, jest } from '@jest/globals'
import { NitySessionRegistry, type NitySessionClock, type NitySessionClosedEvent } from 'nity-session-registry'
import { FakeSession, flush, stale } from '../helpers/sessions'

/** The README's clock: the test's own timer functions, looked up when called, so fake timers drive them. */
const testClock: NitySessionClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}

/** A registry that records its close events. */
function setUp(): { registry: NitySessionRegistry<FakeSession>; events: NitySessionClosedEvent[] } {
  const events: NitySessionClosedEvent[] = []
  const registry = new NitySessionRegistry<FakeSession>({ onSessionClosed: (event) => events.push(event) })
  return { registry, events }
}

/** A promise's outcome, without letting an expected rejection go unhandled. */
async function outcome<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown; rejected: boolean }> {
  try {
    return { value: await promise, rejected: false }
  } catch (error) {
    return { error, rejected: true }
  }
}

afterEach(() => {
  jest.useRealTimers()
})

describe('the promise-returning calls return promises of the test realm, under jest', () => {
  it('unregister, for an unknown and for a known session', async () => {
    const { registry } = setUp()
    registry.register('c', new FakeSession('s1'))
    const unknown = registry.unregister('x')
    expect(unknown).toBeInstanceOf(Promise)
    expect(unknown instanceof Promise).toBe(true)
    await expect(unknown).resolves.toBeUndefined()
    const known = registry.unregister('s1')
    expect(known).toBeInstanceOf(Promise)
    await expect(known).resolves.toBeUndefined()
  })

  it('cleanupClient, for an unknown and for a known client', async () => {
    const { registry } = setUp()
    registry.register('c', new FakeSession('s1'))
    const unknown = registry.cleanupClient('nobody')
    expect(unknown).toBeInstanceOf(Promise)
    await expect(unknown).resolves.toBe(0)
    const known = registry.cleanupClient('c')
    expect(known).toBeInstanceOf(Promise)
    await expect(known).resolves.toBe(1)
  })

  it('cleanupStale, closeAll and dispose (twice)', async () => {
    const { registry } = setUp()
    registry.register('c', stale(new FakeSession('broken'), 'error'))
    registry.register('c', new FakeSession('fine'))
    const staleRun = registry.cleanupStale()
    expect(staleRun).toBeInstanceOf(Promise)
    await expect(staleRun).resolves.toBe(1)
    const closeAll = registry.closeAll()
    expect(closeAll).toBeInstanceOf(Promise)
    await expect(closeAll).resolves.toBe(1)
    const disposed = registry.dispose()
    expect(disposed).toBeInstanceOf(Promise)
    await expect(disposed).resolves.toBe(0)
    const again = registry.dispose()
    expect(again).toBeInstanceOf(Promise)
    await expect(again).resolves.toBe(0)
  })

  it('a rejected call is a promise of this realm too', async () => {
    const { registry } = setUp()
    const rejected = registry.unregister(42 as unknown as string)
    expect(rejected).toBeInstanceOf(Promise)
    await expect(rejected).rejects.toBeInstanceOf(TypeError)
  })
})

describe('rejections, under jest', () => {
  it('unregister of a session whose close() rejects with E rejects with E itself, and the session is gone', async () => {
    const { registry } = setUp()
    const E = new Error('close failed')
    registry.register('c', new FakeSession('s1', { kind: 'reject', error: E }))
    await expect(registry.unregister('s1')).rejects.toBe(E)
    expect(registry.getSession('s1')).toBeUndefined()
    expect(registry.getStats()).toEqual({ totalSessions: 0, activeClients: 0, sessionsByClient: {} })
  })

  it('unregister of a session whose close() throws E synchronously rejects with E itself', async () => {
    const { registry } = setUp()
    const E = new RangeError('close threw')
    registry.register('c', new FakeSession('s1', { kind: 'throw', error: E }))
    const result = await outcome(registry.unregister('s1'))
    expect(result.rejected).toBe(true)
    expect(result.error).toBe(E)
    expect(result.error).toBeInstanceOf(RangeError)
    expect(registry.getSession('s1')).toBeUndefined()
  })

  it('a close() that rejects with a value that is not an error: unregister rejects with that value', async () => {
    const { registry } = setUp()
    const reason = { why: 'not an error' }
    registry.register('c', new FakeSession('s1', { kind: 'reject', error: reason }))
    await expect(registry.unregister('s1')).rejects.toBe(reason)
  })

  it('unregister(42) rejects with a TypeError of this realm, code ERR_INVALID_SESSION_ID', async () => {
    const { registry } = setUp()
    await expect(registry.unregister(42 as unknown as string)).rejects.toBeInstanceOf(TypeError)
    await expect(registry.unregister(42 as unknown as string)).rejects.toBeInstanceOf(Error)
    await expect(registry.unregister(42 as unknown as string)).rejects.toMatchObject({ code: 'ERR_INVALID_SESSION_ID' })
    await expect(registry.unregister(42 as unknown as string)).rejects.toThrow(TypeError)
  })

  it('cleanupClient(42) rejects with a TypeError of this realm, code ERR_INVALID_CLIENT_ID', async () => {
    const { registry } = setUp()
    registry.register('c', new FakeSession('s1'))
    await expect(registry.cleanupClient(42 as unknown as string)).rejects.toBeInstanceOf(TypeError)
    await expect(registry.cleanupClient(42 as unknown as string)).rejects.toMatchObject({
      code: 'ERR_INVALID_CLIENT_ID',
    })
    const result = await outcome(registry.cleanupClient(42 as unknown as string))
    expect(Object.getPrototypeOf(result.error)).toBe(TypeError.prototype)
    expect(registry.getStats().totalSessions).toBe(1)
  })

  it('a close given up on at the deadline rejects with an Error of this realm, code ERR_CLOSE_TIMEOUT, the one the hook gets', async () => {
    jest.useFakeTimers()
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      clock: testClock,
      closeTimeoutMs: 1_000,
      onSessionClosed: (event) => events.push(event),
    })
    registry.register('c', new FakeSession('stuck', { kind: 'never' }))
    const closing = outcome(registry.unregister('stuck'))
    await jest.advanceTimersByTimeAsync(1_000)
    const result = await closing
    expect(result.rejected).toBe(true)
    expect(result.error).toBeInstanceOf(Error)
    expect(result.error).toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ sessionId: 'stuck', clientId: 'c', reason: 'unregister', timedOut: true })
    expect(events[0].error).toBe(result.error)
    expect(Object.getPrototypeOf(events[0])).toBe(Object.prototype)
  })
})

describe('close hooks, under jest', () => {
  it('get plain objects of this realm, equal to plain literals', async () => {
    const { registry, events } = setUp()
    const seen: NitySessionClosedEvent[] = []
    registry.onSessionClosed((event) => seen.push(event))
    registry.register('c', new FakeSession('s1'))
    await registry.unregister('s1')
    expect(events).toHaveLength(1)
    expect(seen).toHaveLength(1)
    for (const event of [events[0], seen[0]]) {
      expect(Object.getPrototypeOf(event)).toBe(Object.prototype)
      expect(event).toBeInstanceOf(Object)
      expect(event).toEqual({ sessionId: 's1', clientId: 'c', reason: 'unregister', durationMs: expect.any(Number) })
      expect(event.error).toBeUndefined()
      expect(event.timedOut).toBeUndefined()
    }
  })

  it("a failed close's error is the handle's own error, for each failure of a cleanupClient", async () => {
    const { registry, events } = setUp()
    const E1 = new Error('first')
    const E2 = new TypeError('second')
    registry.register('c', new FakeSession('a', { kind: 'reject', error: E1 }))
    registry.register('c', new FakeSession('b', { kind: 'throw', error: E2 }))
    registry.register('c', new FakeSession('ok'))
    await expect(registry.cleanupClient('c')).resolves.toBe(3)
    const byId = new Map(events.map((event) => [event.sessionId, event]))
    expect(byId.get('a')?.error).toBe(E1)
    expect(byId.get('b')?.error).toBe(E2)
    expect(byId.get('ok')?.error).toBeUndefined()
    for (const event of events) {
      expect(Object.getPrototypeOf(event)).toBe(Object.prototype)
      expect(event.reason).toBe('cleanupClient')
    }
    expect(byId.get('a')).toEqual({
      sessionId: 'a',
      clientId: 'c',
      reason: 'cleanupClient',
      durationMs: expect.any(Number),
      error: E1,
    })
  })

  it('cleanupStale reports what it closed with plain events; a throwing getHealth counts as an error state', async () => {
    const { registry, events } = setUp()
    const throwing = new FakeSession('throws')
    throwing.healthError = new Error('no health')
    registry.register('c', stale(new FakeSession('broken'), 'error'))
    registry.register('c', stale(new FakeSession('late'), 'timedOut'))
    registry.register('c', throwing)
    registry.register('c', new FakeSession('fine'))
    await expect(registry.cleanupStale()).resolves.toBe(3)
    await flush()
    expect(events.map((event) => event.sessionId).sort()).toEqual(['broken', 'late', 'throws'])
    for (const event of events) {
      expect(Object.getPrototypeOf(event)).toBe(Object.prototype)
      expect(event).toEqual({
        sessionId: event.sessionId,
        clientId: 'c',
        reason: 'cleanupStale',
        durationMs: expect.any(Number),
      })
    }
    expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { c: 1 } })
  })

  it('closeAll and dispose report plain events with reason shutdown', async () => {
    const { registry, events } = setUp()
    registry.register('a', new FakeSession('a1'))
    registry.register('b', new FakeSession('b1'))
    await expect(registry.closeAll()).resolves.toBe(2)
    registry.register('a', new FakeSession('a2'))
    await expect(registry.dispose()).resolves.toBe(1)
    expect(events.map((event) => [event.sessionId, event.reason]).sort()).toEqual([
      ['a1', 'shutdown'],
      ['a2', 'shutdown'],
      ['b1', 'shutdown'],
    ])
    for (const event of events) expect(Object.getPrototypeOf(event)).toBe(Object.prototype)
  })
})
