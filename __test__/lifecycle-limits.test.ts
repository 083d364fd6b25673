import { describe, expect, it } from 'vitest'
import {
  NitySessionRegistry,
  type NitySessionClosedEvent,
  type NitySessionRegistryMetrics,
  type NitySessionRegistryOptions,
} from 'nity-session-registry'
import { FakeSession, flush, stale } from './helpers/sessions'
import { ManualClock } from './helpers/clock'

type Registry = NitySessionRegistry<FakeSession>
type CodedError = Error & { code?: unknown }

/**
 * Lets the event loop turn until `condition` holds (or a generous number of
 * turns passed). Bulk closes are started in time slices that yield to the
 * event loop, so on a slow machine they may need more than a few turns.
 */
async function until(condition: () => boolean, turns = 2_000): Promise<void> {
  for (let i = 0; i < turns && !condition(); i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

/** The error `fn` throws; fails the test if it does not throw. */
function thrown(fn: () => unknown): CodedError {
  let result: unknown
  try {
    result = fn()
  } catch (error) {
    return error as CodedError
  }
  throw new Error(`expected a throw, got ${String(result)}`)
}

/** Everything observable about a registry without counting as activity. */
function snapshot(registry: Registry) {
  return {
    stats: registry.getStats(),
    rows: registry.list({ limit: 100_000 }).sessions,
    metrics: registry.getMetrics(),
  }
}

/** `register`, answering 'ok' or the error's code. */
function tryRegister(registry: Registry, clientId: string, session: FakeSession, admitted?: FakeSession[]): string {
  try {
    registry.register(clientId, session)
    admitted?.push(session)
    return 'ok'
  } catch (error) {
    return String((error as CodedError).code)
  }
}

function sessions(prefix: string, count: number, behaviour?: FakeSession['behaviour']): FakeSession[] {
  return Array.from({ length: count }, (_, i) => new FakeSession(`${prefix}${i}`, behaviour))
}

function totalCloseCalls(all: FakeSession[]): number {
  return all.reduce((sum, session) => sum + session.closeCalls, 0)
}

/**
 * Every admitted handle is either still registered (and never closed) or
 * gone and closed exactly once; every refused handle is neither; the counts
 * agree with each other and the limit.
 */
function expectConsistent(registry: Registry, admitted: FakeSession[], refused: FakeSession[], limit: number): void {
  const stats = registry.getStats()
  expect(stats.totalSessions).toBeLessThanOrEqual(limit)
  const rows = registry.list({ limit: 100_000 }).sessions
  expect(rows).toHaveLength(stats.totalSessions)
  expect(new Set(rows.map((row) => row.sessionId)).size).toBe(rows.length)
  let registered = 0
  for (const session of admitted) {
    const present = registry.getSession(session.id) === session
    if (present) registered += 1
    expect({ id: session.id, present, closeCalls: session.closeCalls }).toEqual({
      id: session.id,
      present,
      closeCalls: present ? 0 : 1,
    })
  }
  for (const session of refused) {
    expect(registry.getSession(session.id)).not.toBe(session)
    expect(session.closeCalls).toBe(0)
  }
  expect(registered).toBe(stats.totalSessions)
  const metrics = registry.getMetrics()
  expect(metrics.sessionsRegistered).toBe(admitted.length)
  expect(metrics.sessionsRegistered - metrics.sessionsClosed).toBe(stats.totalSessions)
}

const ZERO_REASONS = {
  unregister: 0,
  cleanupClient: 0,
  cleanupStale: 0,
  idle: 0,
  evicted: 0,
  shutdown: 0,
  remote: 0,
  conflict: 0,
}

describe('a registry made without options', () => {
  it('behaves as the documented API: no limits over a few thousand registrations', () => {
    for (const registry of [new NitySessionRegistry<FakeSession>(), new NitySessionRegistry<FakeSession>({})]) {
      const big = sessions('big-', 3_000)
      for (const session of big) registry.register('big', session)
      const spread = sessions('spread-', 2_000)
      spread.forEach((session, i) => registry.register(`client-${i % 100}`, session))
      const stats = registry.getStats()
      expect(stats.totalSessions).toBe(5_000)
      expect(stats.activeClients).toBe(101)
      expect(stats.sessionsByClient.big).toBe(3_000)
      expect(stats.sessionsByClient['client-7']).toBe(20)
      const listed = registry.getClientSessions('big')
      expect(listed).toHaveLength(3_000)
      expect(listed[0]).toBe(big[0])
      expect(listed[2_999]).toBe(big[2_999])
      for (const i of [0, 1, 999, 1_500, 2_999]) expect(registry.getSession(`big-${i}`)).toBe(big[i])
      for (const i of [0, 777, 1_999]) expect(registry.getSession(`spread-${i}`)).toBe(spread[i])
      expect(totalCloseCalls(big) + totalCloseCalls(spread)).toBe(0)
      expect(registry.getMetrics().sessionsRegistered).toBe(5_000)
    }
  })
})

describe('limit options', () => {
  const invalid: unknown[] = [0, -1, 1.5, Number.NaN, '3', Number.POSITIVE_INFINITY]
  for (const name of ['maxSessions', 'maxSessionsPerClient'] as const) {
    it.each(invalid.map((value) => [String(value), value]))(
      `rejects ${name} = %s with a TypeError ERR_INVALID_OPTIONS`,
      (_, value) => {
        const error = thrown(() => new NitySessionRegistry({ [name]: value } as unknown as NitySessionRegistryOptions))
        expect(error).toBeInstanceOf(TypeError)
        expect(error.code).toBe('ERR_INVALID_OPTIONS')
      },
    )
  }

  it('accepts positive integer limits', () => {
    const registry = new NitySessionRegistry<FakeSession>({ maxSessions: 1, maxSessionsPerClient: 3 })
    registry.register('c1', new FakeSession('a'))
    expect(registry.getStats().totalSessions).toBe(1)
  })
})

describe('session limits', () => {
  it('maxSessions: register beyond it throws an Error ERR_SESSION_LIMIT and changes nothing', () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ maxSessions: 3, clock })
    const [a, b, c] = sessions('s', 3)
    registry.register('c1', a)
    registry.register('c1', b)
    registry.register('c2', c)
    clock.advance(10)
    const before = snapshot(registry)
    const extra = new FakeSession('extra')
    for (const client of ['c1', 'c3']) {
      const error = thrown(() => registry.register(client, extra))
      expect(error).toBeInstanceOf(Error)
      expect(error).not.toBeInstanceOf(TypeError)
      expect(error.code).toBe('ERR_SESSION_LIMIT')
    }
    expect(snapshot(registry)).toEqual(before)
    expect(registry.getSession('extra')).toBeUndefined()
    expect(registry.getClientSessions('c3')).toEqual([])
    expect(totalCloseCalls([a, b, c, extra])).toBe(0)
  })

  it('maxSessionsPerClient: register beyond it throws an Error ERR_CLIENT_SESSION_LIMIT and changes nothing; other clients still register', () => {
    const registry = new NitySessionRegistry<FakeSession>({ maxSessionsPerClient: 2 })
    const [a, b] = sessions('s', 2)
    registry.register('c1', a)
    registry.register('c1', b)
    const before = snapshot(registry)
    const extra = new FakeSession('extra')
    const error = thrown(() => registry.register('c1', extra))
    expect(error).toBeInstanceOf(Error)
    expect(error).not.toBeInstanceOf(TypeError)
    expect(error.code).toBe('ERR_CLIENT_SESSION_LIMIT')
    expect(snapshot(registry)).toEqual(before)
    expect(registry.getSession('extra')).toBeUndefined()
    expect(registry.getClientSessions('c1')).toEqual([a, b])
    registry.register('c2', extra)
    expect(registry.getSession('extra')).toBe(extra)
    expect(registry.getStats().sessionsByClient).toEqual({ c1: 2, c2: 1 })
  })

  it('checks the per-client limit before the registry limit', () => {
    const registry = new NitySessionRegistry<FakeSession>({ maxSessions: 2, maxSessionsPerClient: 1 })
    registry.register('c1', new FakeSession('a'))
    registry.register('c2', new FakeSession('b'))
    // Both limits are reached for c1: the client's is reported.
    expect(thrown(() => registry.register('c1', new FakeSession('x'))).code).toBe('ERR_CLIENT_SESSION_LIMIT')
    // Only the registry's is reached for a new client.
    expect(thrown(() => registry.register('c3', new FakeSession('y'))).code).toBe('ERR_SESSION_LIMIT')
    expect(registry.getStats().totalSessions).toBe(2)
  })

  for (const evictIdle of [false, true]) {
    it(`when full, re-registering the same handle under the same client is a no-op and a different handle with a taken id throws ERR_SESSION_ALREADY_REGISTERED (evictIdle: ${evictIdle})`, () => {
      const clock = new ManualClock()
      const events: NitySessionClosedEvent[] = []
      const registry = new NitySessionRegistry<FakeSession>({
        maxSessions: 2,
        maxSessionsPerClient: 2,
        evictIdle,
        clock,
        onSessionClosed: (event) => events.push(event),
      })
      const [a, b] = sessions('s', 2)
      registry.register('c1', a)
      clock.advance(5)
      registry.register('c1', b)
      clock.advance(5)
      const before = snapshot(registry)
      expect(() => registry.register('c1', a)).not.toThrow()
      expect(() => registry.register('c1', b)).not.toThrow()
      expect(snapshot(registry)).toEqual(before)
      const impostor = new FakeSession('s0')
      for (const client of ['c1', 'c2']) {
        const error = thrown(() => registry.register(client, impostor))
        expect(error.code).toBe('ERR_SESSION_ALREADY_REGISTERED')
      }
      expect(thrown(() => registry.register('c2', a)).code).toBe('ERR_SESSION_ALREADY_REGISTERED')
      expect(snapshot(registry)).toEqual(before)
      expect(registry.getSession('s0')).toBe(a)
      expect(events).toEqual([])
      expect(totalCloseCalls([a, b, impostor])).toBe(0)
    })
  }

  it('frees a slot as soon as a session is removed, even while its close is still pending', async () => {
    const registry = new NitySessionRegistry<FakeSession>({ maxSessions: 1 })
    const slow = new FakeSession('slow', { kind: 'manual' })
    registry.register('c1', slow)
    const closing = registry.unregister('slow')
    const next = new FakeSession('next')
    registry.register('c1', next)
    expect(registry.getSession('next')).toBe(next)
    expect(thrown(() => registry.register('c1', new FakeSession('more'))).code).toBe('ERR_SESSION_LIMIT')
    slow.settle!.resolve()
    await closing
    expect(registry.getStats().totalSessions).toBe(1)
  })

  it('a close() that registers when its slot frees can never push the registry past maxSessions', async () => {
    const registry = new NitySessionRegistry<FakeSession>({ maxSessions: 2 })
    const observed: number[] = []
    const admitted: FakeSession[] = []
    const refused: FakeSession[] = []
    const codes: string[] = []
    const observe = () => observed.push(registry.getStats().totalSessions)
    const makeCloser = (id: string) =>
      new FakeSession(id, {
        kind: 'custom',
        run: () => {
          observe()
          for (const extra of sessions(`${id}-x`, 3)) {
            const code = tryRegister(registry, 'other', extra, admitted)
            if (code !== 'ok') refused.push(extra)
            codes.push(code)
            observe()
          }
        },
      })
    const a = makeCloser('a')
    const b = makeCloser('b')
    registry.register('c1', a)
    registry.register('c1', b)
    admitted.push(a, b)
    await registry.unregister('a')
    expect(codes).toEqual(['ok', 'ERR_SESSION_LIMIT', 'ERR_SESSION_LIMIT'])
    await registry.cleanupClient('c1')
    await flush()
    observe()
    expect(Math.max(...observed)).toBeLessThanOrEqual(2)
    expect(codes.filter((code) => code === 'ok')).toHaveLength(2)
    expect(codes.filter((code) => code !== 'ok').every((code) => code === 'ERR_SESSION_LIMIT')).toBe(true)
    expectConsistent(registry, admitted, refused, 2)
    expect(registry.getStats().totalSessions).toBe(2)
  })

  it('many registrations racing from microtasks and Promise.all never exceed either limit', async () => {
    const registry = new NitySessionRegistry<FakeSession>({ maxSessions: 50, maxSessionsPerClient: 8 })
    const admitted: FakeSession[] = []
    const refused: FakeSession[] = []
    let maxTotal = 0
    let maxPerClient = 0
    const observe = () => {
      const stats = registry.getStats()
      maxTotal = Math.max(maxTotal, stats.totalSessions)
      maxPerClient = Math.max(maxPerClient, ...Object.values(stats.sessionsByClient), 0)
    }
    const codes = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        for (let k = 0; k < i % 4; k++) await Promise.resolve()
        const session = new FakeSession(`r${i}`)
        const code = tryRegister(registry, `c${i % 10}`, session, admitted)
        if (code !== 'ok') refused.push(session)
        observe()
        if (i % 7 === 0 && code === 'ok') {
          // Some sessions leave again, freeing room for later racers.
          await registry.unregister(session.id)
          observe()
        }
        return code
      }),
    )
    await flush()
    expect(maxTotal).toBeLessThanOrEqual(50)
    expect(maxPerClient).toBeLessThanOrEqual(8)
    expect(new Set(codes.filter((code) => code !== 'ok'))).toEqual(
      new Set(['ERR_SESSION_LIMIT', 'ERR_CLIENT_SESSION_LIMIT']),
    )
    expect(registry.getStats().totalSessions).toBe(50)
    expectConsistent(registry, admitted, refused, 50)
  })
})

describe('evictIdle', () => {
  it('many registrations racing from microtasks and Promise.all evict to stay exactly at the limits, never above', async () => {
    const clock = new ManualClock()
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      maxSessions: 20,
      maxSessionsPerClient: 6,
      evictIdle: true,
      clock,
      onSessionClosed: (event) => events.push(event),
    })
    const admitted: FakeSession[] = []
    const refused: FakeSession[] = []
    let maxTotal = 0
    let maxPerClient = 0
    const observe = () => {
      const stats = registry.getStats()
      maxTotal = Math.max(maxTotal, stats.totalSessions)
      maxPerClient = Math.max(maxPerClient, ...Object.values(stats.sessionsByClient), 0)
    }
    const codes = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        for (let k = 0; k < i % 5; k++) await Promise.resolve()
        clock.advance(1)
        const session = new FakeSession(`r${i}`, {
          kind: 'custom',
          run: () => {
            observe()
          },
        })
        const code = tryRegister(registry, `c${i % 7}`, session, admitted)
        if (code !== 'ok') refused.push(session)
        observe()
        return code
      }),
    )
    await flush()
    observe()
    expect(codes.every((code) => code === 'ok')).toBe(true)
    expect(maxTotal).toBeLessThanOrEqual(20)
    expect(maxPerClient).toBeLessThanOrEqual(6)
    expect(registry.getStats().totalSessions).toBe(20)
    expect(events).toHaveLength(180)
    expect(events.every((event) => event.reason === 'evicted')).toBe(true)
    expect(registry.getMetrics().closesByReason.evicted).toBe(180)
    expectConsistent(registry, admitted, refused, 20)
  })

  it('per-client limit: closes that client\u2019s least recently active idle session with reason evicted, once, and registers the new one', async () => {
    const clock = new ManualClock()
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      maxSessionsPerClient: 3,
      evictIdle: true,
      clock,
      onSessionClosed: (event) => events.push(event),
    })
    const older = new FakeSession('older-other-client')
    registry.register('c2', older)
    clock.advance(10)
    const [a, b, c] = sessions('s', 3)
    for (const session of [a, b, c]) {
      registry.register('c1', session)
      clock.advance(10)
    }
    expect(registry.touch('s0')).toBe(true)
    clock.advance(10)
    const d = new FakeSession('d')
    registry.register('c1', d)
    await flush()
    expect(b.closeCalls).toBe(1)
    expect(totalCloseCalls([a, c, d, older])).toBe(0)
    expect(events).toEqual([expect.objectContaining({ sessionId: 's1', clientId: 'c1', reason: 'evicted' })])
    expect(registry.getSession('s1')).toBeUndefined()
    expect(registry.getSession('d')).toBe(d)
    expect(registry.getClientSessions('c1')).toEqual([a, c, d])
    expect(registry.getSession('older-other-client')).toBe(older)
    const metrics = registry.getMetrics()
    expect(metrics.closesByReason).toEqual({ ...ZERO_REASONS, evicted: 1 })
    expect(metrics.sessionsClosed).toBe(1)
  })

  it('maxSessions: closes the least recently active idle session of the whole registry', async () => {
    const clock = new ManualClock()
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      maxSessions: 3,
      evictIdle: true,
      clock,
      onSessionClosed: (event) => events.push(event),
    })
    const [a, b, c] = sessions('s', 3)
    registry.register('c1', a)
    clock.advance(10)
    registry.register('c2', b)
    clock.advance(10)
    registry.register('c3', c)
    clock.advance(10)
    registry.touch('s0')
    clock.advance(10)
    const d = new FakeSession('d')
    registry.register('c4', d)
    await flush()
    expect(b.closeCalls).toBe(1)
    expect(totalCloseCalls([a, c, d])).toBe(0)
    expect(events).toEqual([expect.objectContaining({ sessionId: 's1', clientId: 'c2', reason: 'evicted' })])
    expect(registry.getStats()).toEqual({
      totalSessions: 3,
      activeClients: 3,
      sessionsByClient: { c1: 1, c3: 1, c4: 1 },
    })
    expect(registry.getMetrics().closesByReason.evicted).toBe(1)
  })

  it('a getSession hit counts as activity for the eviction order', async () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ maxSessions: 3, evictIdle: true, clock })
    const [a, b, c] = sessions('s', 3)
    for (const session of [a, b, c]) {
      registry.register(`c-${session.id}`, session)
      clock.advance(10)
    }
    expect(registry.getSession('s0')).toBe(a)
    clock.advance(10)
    registry.register('c9', new FakeSession('d'))
    await flush()
    expect(a.closeCalls).toBe(0)
    expect(b.closeCalls).toBe(1)
    expect(registry.getSession('s0')).toBe(a)
  })

  it('getClientSessions counts as activity for the eviction order', async () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ maxSessions: 3, evictIdle: true, clock })
    const [a, b, c] = sessions('s', 3)
    for (const session of [a, b, c]) {
      registry.register(`c-${session.id}`, session)
      clock.advance(10)
    }
    expect(registry.getClientSessions('c-s0')).toEqual([a])
    clock.advance(10)
    registry.register('c9', new FakeSession('d'))
    await flush()
    expect(a.closeCalls).toBe(0)
    expect(b.closeCalls).toBe(1)
  })

  it('never evicts a running session, nor one whose isRunning() throws or is missing', async () => {
    const clock = new ManualClock()
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      maxSessions: 4,
      evictIdle: true,
      clock,
      onSessionClosed: (event) => events.push(event),
    })
    const running = new FakeSession('running')
    running.running = true
    const throwing = new FakeSession('throwing')
    throwing.isRunning = () => {
      throw new Error('cannot tell')
    }
    const missing = new FakeSession('missing')
    ;(missing as unknown as { isRunning: unknown }).isRunning = undefined
    const idle = new FakeSession('idle')
    // The idle session is the most recently active: the others come first.
    for (const session of [running, throwing, missing, idle]) {
      registry.register('c1', session)
      clock.advance(10)
    }
    const fresh = new FakeSession('fresh')
    registry.register('c2', fresh)
    await flush()
    expect(idle.closeCalls).toBe(1)
    expect(totalCloseCalls([running, throwing, missing, fresh])).toBe(0)
    expect(events.map((event) => [event.sessionId, event.reason])).toEqual([['idle', 'evicted']])
    expect(registry.getClientSessions('c1')).toEqual([running, throwing, missing])
    expect(registry.getSession('fresh')).toBe(fresh)
  })

  it('when no session is idle, register throws the limit error and changes nothing (registry limit)', async () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ maxSessions: 3, evictIdle: true, clock })
    const all = sessions('s', 3)
    all.forEach((session, i) => {
      session.running = true
      registry.register(`c${i}`, session)
      clock.advance(10)
    })
    const before = snapshot(registry)
    const error = thrown(() => registry.register('c9', new FakeSession('new')))
    expect(error).not.toBeInstanceOf(TypeError)
    expect(error.code).toBe('ERR_SESSION_LIMIT')
    await flush()
    expect(snapshot(registry)).toEqual(before)
    expect(totalCloseCalls(all)).toBe(0)
    expect(registry.getSession('new')).toBeUndefined()
  })

  it('when none of the client\u2019s sessions is idle, register throws ERR_CLIENT_SESSION_LIMIT and evicts nothing of other clients', async () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({
      maxSessionsPerClient: 2,
      maxSessions: 10,
      evictIdle: true,
      clock,
    })
    const otherIdle = new FakeSession('other-idle')
    registry.register('c2', otherIdle)
    clock.advance(10)
    const mine = sessions('mine', 2)
    for (const session of mine) {
      session.running = true
      registry.register('c1', session)
      clock.advance(10)
    }
    const before = snapshot(registry)
    const error = thrown(() => registry.register('c1', new FakeSession('new')))
    expect(error.code).toBe('ERR_CLIENT_SESSION_LIMIT')
    await flush()
    expect(snapshot(registry)).toEqual(before)
    expect(totalCloseCalls([...mine, otherIdle])).toBe(0)
  })

  it('releases the evicted handle at once: the new session is returned even while the evicted close() is slow', async () => {
    const clock = new ManualClock()
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      maxSessions: 2,
      evictIdle: true,
      clock,
      onSessionClosed: (event) => events.push(event),
    })
    const victim = new FakeSession('victim', { kind: 'manual' })
    const keeper = new FakeSession('keeper')
    registry.register('c1', victim)
    clock.advance(10)
    registry.register('c1', keeper)
    clock.advance(10)
    const fresh = new FakeSession('fresh')
    registry.register('c2', fresh)
    await until(() => victim.closeCalls > 0)
    expect(victim.closeCalls).toBe(1)
    expect(fresh.closeCalls).toBe(0)
    expect(registry.getSession('victim')).toBeUndefined()
    expect(registry.getSession('fresh')).toBe(fresh)
    expect(registry.getClientSessions('c1')).toEqual([keeper])
    expect(registry.getClientSessions('c2')).toEqual([fresh])
    expect(registry.list().sessions.map((row) => row.sessionId)).toEqual(['keeper', 'fresh'])
    expect(events).toEqual([])
    clock.advance(25)
    victim.settle!.resolve()
    await until(() => events.length > 0)
    expect(events).toEqual([
      expect.objectContaining({ sessionId: 'victim', clientId: 'c1', reason: 'evicted', durationMs: 25 }),
    ])
    expect(registry.getSession('fresh')).toBe(fresh)
    expect(victim.closeCalls).toBe(1)
  })

  it('an isRunning() that registers sessions re-entrantly during the eviction search never leaves the registry above its limit nor loses or duplicates sessions', async () => {
    const clock = new ManualClock()
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      maxSessions: 3,
      evictIdle: true,
      clock,
      onSessionClosed: (event) => events.push(event),
    })
    const admitted: FakeSession[] = []
    const refused: FakeSession[] = []
    const observed: number[] = []
    const observe = () => observed.push(registry.getStats().totalSessions)
    const [a, b, c] = sessions('s', 3)
    let reentered = false
    a.isRunning = () => {
      observe()
      if (!reentered) {
        reentered = true
        for (const extra of sessions('nested', 2)) {
          if (tryRegister(registry, 'nested', extra, admitted) !== 'ok') refused.push(extra)
          observe()
        }
      }
      return false
    }
    for (const session of [a, b, c]) {
      registry.register('c1', session)
      admitted.push(session)
      clock.advance(10)
    }
    const d = new FakeSession('d')
    const code = tryRegister(registry, 'c2', d, admitted)
    if (code !== 'ok') refused.push(d)
    observe()
    await flush()
    observe()
    expect(reentered).toBe(true)
    expect(['ok', 'ERR_SESSION_LIMIT']).toContain(code)
    expect(Math.max(...observed)).toBeLessThanOrEqual(3)
    expectConsistent(registry, admitted, refused, 3)
    expect(events.every((event) => event.reason === 'evicted')).toBe(true)
    expect(events).toHaveLength(registry.getMetrics().sessionsClosed)
    expect(new Set(events.map((event) => event.sessionId)).size).toBe(events.length)
  })

  it('an isRunning() that unregisters sessions during the eviction search never leaves the registry above its limit nor loses or duplicates sessions', async () => {
    const clock = new ManualClock()
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      maxSessions: 3,
      evictIdle: true,
      clock,
      onSessionClosed: (event) => events.push(event),
    })
    const observed: number[] = []
    const observe = () => observed.push(registry.getStats().totalSessions)
    const [a, b, c] = sessions('s', 3)
    const unregistering: Promise<void>[] = []
    a.isRunning = () => {
      observe()
      if (unregistering.length === 0) unregistering.push(registry.unregister('s1'))
      observe()
      return true
    }
    for (const session of [a, b, c]) {
      registry.register('c1', session)
      clock.advance(10)
    }
    const d = new FakeSession('d')
    registry.register('c2', d)
    observe()
    expect(unregistering).toHaveLength(1)
    await Promise.all(unregistering)
    await flush()
    observe()
    expect(Math.max(...observed)).toBeLessThanOrEqual(3)
    expect(registry.getSession('d')).toBe(d)
    expect(b.closeCalls).toBe(1)
    expect(events.filter((event) => event.sessionId === 's1')).toEqual([
      expect.objectContaining({ reason: 'unregister' }),
    ])
    expectConsistent(registry, [a, b, c, d], [], 3)
    expect(new Set(events.map((event) => event.sessionId)).size).toBe(events.length)
  })

  it('a close() of an evicted session that registers re-entrantly never pushes the registry past its limit', async () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ maxSessions: 2, evictIdle: true, clock })
    const admitted: FakeSession[] = []
    const refused: FakeSession[] = []
    const observed: number[] = []
    const observe = () => observed.push(registry.getStats().totalSessions)
    const a = new FakeSession('a', {
      kind: 'custom',
      run: () => {
        observe()
        for (const extra of sessions('from-close-', 2)) {
          if (tryRegister(registry, 'c9', extra, admitted) !== 'ok') refused.push(extra)
          observe()
          clock.advance(1)
        }
      },
    })
    const b = new FakeSession('b')
    registry.register('c1', a)
    clock.advance(10)
    registry.register('c1', b)
    clock.advance(10)
    admitted.push(a, b)
    const c = new FakeSession('c')
    registry.register('c2', c)
    admitted.push(c)
    observe()
    await flush()
    observe()
    expect(a.closeCalls).toBe(1)
    expect(Math.max(...observed)).toBeLessThanOrEqual(2)
    expectConsistent(registry, admitted, refused, 2)
  })
})

describe('activity', () => {
  it('touch() records activity on the registry clock and returns false for an unknown id', () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ clock })
    registry.register('c1', new FakeSession('a'))
    clock.advance(40)
    expect(registry.touch('a')).toBe(true)
    expect(registry.getSessionInfo('a')?.lastActivityAt).toBe(clock.now())
    expect(registry.touch('nope')).toBe(false)
  })

  it('a getSession hit moves lastActivityAt to the clock\u2019s time', () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ clock })
    registry.register('c1', new FakeSession('a'))
    clock.advance(40)
    registry.getSession('a')
    expect(registry.getSessionInfo('a')?.lastActivityAt).toBe(clock.now())
  })

  it('getClientSessions moves lastActivityAt of every session it hands out', () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ clock })
    registry.register('c1', new FakeSession('a'))
    registry.register('c1', new FakeSession('b'))
    registry.register('c2', new FakeSession('other'))
    const start = clock.now()
    clock.advance(40)
    registry.getClientSessions('c1')
    expect(registry.getSessionInfo('a')?.lastActivityAt).toBe(clock.now())
    expect(registry.getSessionInfo('b')?.lastActivityAt).toBe(clock.now())
    expect(registry.getSessionInfo('other')?.lastActivityAt).toBe(start)
  })

  it('a session that takes the slot of one looked up later than its registration starts with its own activity', async () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ clock, idleTimeoutMs: 1_000 })
    registry.register('c1', new FakeSession('old'))
    clock.advance(500)
    registry.getSession('old') // a lookup at +500
    await registry.unregister('old')
    clock.advance(-400) // a clock that stepped back: the new session registers before that lookup
    registry.register('c1', new FakeSession('new')) // the freed slot is reused
    const registeredAt = registry.getSessionInfo('new')?.registeredAt
    expect(registry.getSessionInfo('new')?.lastActivityAt).toBe(registeredAt)
    expect(registry.list().sessions.map((s) => s.lastActivityAt)).toEqual([registeredAt])
  })

  it('getSessionInfo and list do not count as activity', () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ clock })
    registry.register('c1', new FakeSession('a'))
    const start = clock.now()
    clock.advance(40)
    registry.getSessionInfo('a')
    registry.list()
    registry.list({ clientId: 'c1' })
    expect(registry.getSessionInfo('a')?.lastActivityAt).toBe(start)
  })
})

describe('bounded close concurrency', () => {
  /**
   * Drives a bulk close of `all` ('manual' closes) to its end, checking at
   * every step that no more than `limit` closes run at once, that exactly
   * `limit` run while more wait, and that the promise only resolves when all
   * have settled.
   */
  async function driveBounded(all: FakeSession[], limit: number, done: Promise<number>): Promise<void> {
    let result: number | undefined
    void done.then((count) => {
      result = count
    })
    const started = () => totalCloseCalls(all)
    let settled = 0
    const pending = new Set<FakeSession>()
    while (settled < all.length) {
      const expected = Math.min(limit, all.length - settled)
      await until(() => started() - settled >= expected)
      await flush()
      expect(started() - settled).toBe(expected)
      expect(all.every((session) => session.closeCalls <= 1)).toBe(true)
      expect(result).toBeUndefined()
      for (const session of all) if (session.closeCalls === 1 && session.settle !== undefined) pending.add(session)
      // Settle a few of the running closes (fewer than all of them, to see the
      // queue refill one by one), rejecting some for good measure.
      const batch = [...pending].slice(0, Math.max(1, Math.floor(limit / 3)))
      for (const session of batch) {
        pending.delete(session)
        const settle = session.settle!
        session.settle = undefined
        if (settled % 5 === 0) settle.reject(new Error('close failed'))
        else settle.resolve()
        settled += 1
      }
    }
    await expect(done).resolves.toBe(all.length)
    expect(started()).toBe(all.length)
  }

  it('cleanupClient of 200 sessions starts at most maxConcurrentCloses closes, starts more as some settle, and resolves with 200 after all settled', async () => {
    const registry = new NitySessionRegistry<FakeSession>({ maxConcurrentCloses: 10 })
    const all = sessions('m', 200, { kind: 'manual' })
    for (const session of all) registry.register('c1', session)
    const done = registry.cleanupClient('c1')
    expect(registry.getStats().totalSessions).toBe(0)
    await driveBounded(all, 10, done)
  })

  it('by default starts exactly 64 of 200 closes at first', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const all = sessions('m', 200, { kind: 'manual' })
    for (const session of all) registry.register('c1', session)
    const done = registry.cleanupClient('c1')
    await until(() => totalCloseCalls(all) >= 64)
    await flush()
    expect(totalCloseCalls(all)).toBe(64)
    for (const session of all) session.settle?.resolve()
    await until(() => totalCloseCalls(all) >= 128)
    await flush()
    expect(totalCloseCalls(all)).toBe(128)
    for (let round = 0; round < 10 && totalCloseCalls(all) < 200; round++) {
      for (const session of all) session.settle?.resolve()
      await until(() => totalCloseCalls(all) === 200)
    }
    for (const session of all) session.settle?.resolve()
    await expect(done).resolves.toBe(200)
  })

  it('cleanupStale is bounded the same way', async () => {
    const registry = new NitySessionRegistry<FakeSession>({ maxConcurrentCloses: 7 })
    const all = sessions('m', 60, { kind: 'manual' }).map((session) => stale(session, 'error'))
    const healthy = new FakeSession('healthy')
    for (const session of all) registry.register('c1', session)
    registry.register('c1', healthy)
    const done = registry.cleanupStale()
    await driveBounded(all, 7, done)
    expect(healthy.closeCalls).toBe(0)
    expect(registry.getClientSessions('c1')).toEqual([healthy])
  })

  it('closeAll is bounded the same way', async () => {
    const registry = new NitySessionRegistry<FakeSession>({ maxConcurrentCloses: 6 })
    const all = sessions('m', 50, { kind: 'manual' })
    all.forEach((session, i) => registry.register(`c${i % 4}`, session))
    const done = registry.closeAll()
    expect(registry.getStats().totalSessions).toBe(0)
    await driveBounded(all, 6, done)
  })

  it('unregister is not queued behind the limit: its close starts at once', async () => {
    const registry = new NitySessionRegistry<FakeSession>({ maxConcurrentCloses: 4 })
    const bulk = sessions('m', 20, { kind: 'manual' })
    for (const session of bulk) registry.register('bulk', session)
    const single = new FakeSession('single', { kind: 'manual' })
    registry.register('other', single)
    const done = registry.cleanupClient('bulk')
    await until(() => totalCloseCalls(bulk) >= 4)
    await flush()
    expect(totalCloseCalls(bulk)).toBe(4)
    let unregistered = false
    const closing = registry.unregister('single').then(() => {
      unregistered = true
    })
    expect(single.closeCalls).toBe(1)
    single.settle!.resolve()
    await closing
    expect(unregistered).toBe(true)
    await flush()
    expect(totalCloseCalls(bulk)).toBeLessThanOrEqual(4)
    for (let round = 0; round < 20 && totalCloseCalls(bulk) < 20; round++) {
      for (const session of bulk) session.settle?.resolve()
      await until(() => totalCloseCalls(bulk) === 20)
    }
    for (const session of bulk) session.settle?.resolve()
    await expect(done).resolves.toBe(20)
  })
})

describe('per-session metrics', () => {
  it('updateMetrics merges: a name set again replaces its value, other names are kept', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    registry.register('c1', new FakeSession('a'))
    expect(registry.updateMetrics('a', { tokens: 150, costUsd: 0.01 })).toBe(true)
    expect(registry.getSessionInfo('a')?.metrics).toEqual({ tokens: 150, costUsd: 0.01 })
    expect(registry.updateMetrics('a', { tokens: 300, turns: 2 })).toBe(true)
    expect(registry.getSessionInfo('a')?.metrics).toEqual({ tokens: 300, costUsd: 0.01, turns: 2 })
    expect(registry.updateMetrics('a', {})).toBe(true)
    expect(registry.getSessionInfo('a')?.metrics).toEqual({ tokens: 300, costUsd: 0.01, turns: 2 })
  })

  it('updateMetrics of an unknown id returns false and changes nothing', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    registry.register('c1', new FakeSession('a'))
    registry.updateMetrics('a', { tokens: 1 })
    registry.register('c1', new FakeSession('gone'))
    await registry.unregister('gone')
    const before = snapshot(registry)
    expect(registry.updateMetrics('nope', { tokens: 5, other: 1 })).toBe(false)
    expect(registry.updateMetrics('gone', { tokens: 5 })).toBe(false)
    expect(snapshot(registry)).toEqual(before)
    expect(registry.getMetrics().metricTotals).toEqual({ tokens: 1 })
  })

  const invalidMetrics: [string, unknown][] = [
    ['null', null],
    ['a number', 5],
    ['a string', 'tokens'],
    ['undefined', undefined],
    ['a NaN value', { tokens: Number.NaN }],
    ['an Infinity value', { tokens: Number.POSITIVE_INFINITY }],
    ['a -Infinity value', { tokens: Number.NEGATIVE_INFINITY }],
    ['a string value', { tokens: '10' }],
    ['a boolean value', { tokens: true }],
    ['a null value', { tokens: null }],
    ['a valid value before an invalid one', { tokens: 999, costUsd: Number.NaN }],
    ['an invalid value before a valid one', { costUsd: 'free', tokens: 999 }],
  ]
  it.each(invalidMetrics)(
    'updateMetrics with %s throws a TypeError ERR_INVALID_METRICS and merges nothing',
    (_, metrics) => {
      const registry = new NitySessionRegistry<FakeSession>()
      registry.register('c1', new FakeSession('a'))
      registry.updateMetrics('a', { tokens: 1 })
      const before = snapshot(registry)
      const error = thrown(() => registry.updateMetrics('a', metrics as Record<string, number>))
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('ERR_INVALID_METRICS')
      expect(registry.getSessionInfo('a')?.metrics).toEqual({ tokens: 1 })
      expect(snapshot(registry)).toEqual(before)
    },
  )

  it('getSessionInfo reports { sessionId, clientId, registeredAt, lastActivityAt, metrics } on the injected clock, undefined for an unknown id', () => {
    const clock = new ManualClock(5_000)
    const registry = new NitySessionRegistry<FakeSession>({ clock })
    registry.register('c1', new FakeSession('a'))
    clock.advance(100)
    registry.touch('a')
    registry.updateMetrics('a', { tokens: 7 })
    const info = registry.getSessionInfo('a')
    expect(info).toEqual({
      sessionId: 'a',
      clientId: 'c1',
      registeredAt: 5_000,
      lastActivityAt: 5_100,
      metrics: { tokens: 7 },
    })
    expect(Object.keys(info!).sort()).toEqual(['clientId', 'lastActivityAt', 'metrics', 'registeredAt', 'sessionId'])
    expect(registry.getSessionInfo('nope')).toBeUndefined()
  })
})

describe('aggregate metrics', () => {
  it('a fresh registry reports zeros, with every close reason present', () => {
    const registry = new NitySessionRegistry()
    const expected: NitySessionRegistryMetrics = {
      sessionsRegistered: 0,
      sessionsClosed: 0,
      closesByReason: ZERO_REASONS,
      closeFailures: 0,
      closeTimeouts: 0,
      averageCloseDurationMs: 0,
      maxCloseDurationMs: 0,
      averageSessionLifetimeMs: 0,
      metricTotals: {},
    }
    expect(registry.getMetrics()).toEqual(expected)
  })

  it('counts registrations and closes by each of the six reasons', async () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({
      clock,
      idleTimeoutMs: 1_000,
      maxSessionsPerClient: 2,
      evictIdle: true,
    })
    const keep = new FakeSession('keep')
    keep.running = true
    registry.register('k', keep)
    registry.register('u', new FakeSession('u1'))
    await registry.unregister('u1')
    registry.register('cc', new FakeSession('cc1'))
    registry.register('cc', new FakeSession('cc2'))
    await expect(registry.cleanupClient('cc')).resolves.toBe(2)
    registry.register('st', stale(new FakeSession('st1'), 'error'))
    await expect(registry.cleanupStale()).resolves.toBe(1)
    registry.register('idle', new FakeSession('idle1'))
    clock.advance(1_500)
    await expect(registry.cleanupStale()).resolves.toBe(1)
    registry.register('e', new FakeSession('e1'))
    clock.advance(10)
    registry.register('e', new FakeSession('e2'))
    clock.advance(10)
    registry.register('e', new FakeSession('e3'))
    await flush()
    expect(registry.getMetrics().closesByReason).toEqual({
      unregister: 1,
      cleanupClient: 2,
      cleanupStale: 1,
      idle: 1,
      evicted: 1,
      shutdown: 0,
      remote: 0,
      conflict: 0,
    })
    await expect(registry.closeAll()).resolves.toBe(3)
    const metrics = registry.getMetrics()
    expect(metrics.closesByReason).toEqual({
      unregister: 1,
      cleanupClient: 2,
      cleanupStale: 1,
      idle: 1,
      evicted: 1,
      shutdown: 3,
      remote: 0,
      conflict: 0,
    })
    expect(metrics.sessionsRegistered).toBe(9)
    expect(metrics.sessionsClosed).toBe(9)
    expect(metrics.closeFailures).toBe(0)
    expect(metrics.closeTimeouts).toBe(0)
  })

  it('counts closes that threw or rejected as failures and closes given up at the deadline as timeouts', async () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ clock, closeTimeoutMs: 1_000 })
    registry.register('c1', new FakeSession('throws', { kind: 'throw', error: new Error('t') }))
    registry.register('c1', new FakeSession('rejects', { kind: 'reject', error: new Error('r') }))
    registry.register('c1', new FakeSession('fine'))
    registry.register('c2', new FakeSession('never', { kind: 'never' }))
    await expect(registry.cleanupClient('c1')).resolves.toBe(3)
    const timedOut = registry.unregister('never').then(
      () => undefined,
      (error: unknown) => error,
    )
    await flush()
    expect(registry.getMetrics().closeTimeouts).toBe(0)
    clock.advance(1_000)
    const error = (await timedOut) as CodedError
    expect(error.code).toBe('ERR_CLOSE_TIMEOUT')
    const metrics = registry.getMetrics()
    expect(metrics.closeFailures).toBe(2)
    expect(metrics.closeTimeouts).toBe(1)
    expect(metrics.sessionsClosed).toBe(4)
  })

  it('averageCloseDurationMs and maxCloseDurationMs come from the injected clock', async () => {
    const clock = new ManualClock()
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({ clock, onSessionClosed: (event) => events.push(event) })
    const slow = new FakeSession('slow', { kind: 'manual' })
    const quick = new FakeSession('quick', { kind: 'manual' })
    registry.register('c1', slow)
    registry.register('c1', quick)
    const closingSlow = registry.unregister('slow')
    const closingQuick = registry.unregister('quick')
    clock.advance(10)
    quick.settle!.resolve()
    await closingQuick
    clock.advance(20)
    slow.settle!.resolve()
    await closingSlow
    expect(events.map((event) => [event.sessionId, event.durationMs])).toEqual([
      ['quick', 10],
      ['slow', 30],
    ])
    const metrics = registry.getMetrics()
    expect(metrics.maxCloseDurationMs).toBe(30)
    expect(metrics.averageCloseDurationMs).toBe(20)
  })

  it('averageSessionLifetimeMs runs from registration to removal, over closed sessions only', async () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ clock })
    const b = new FakeSession('b', { kind: 'manual' })
    registry.register('c1', new FakeSession('a'))
    clock.advance(100)
    registry.register('c1', b)
    clock.advance(200)
    await registry.unregister('a') // lived 300 ms
    clock.advance(200)
    const closingB = registry.unregister('b') // lived 400 ms; its close takes longer
    registry.register('c1', new FakeSession('still-here'))
    clock.advance(1_000)
    b.settle!.resolve()
    await closingB
    expect(registry.getMetrics().averageSessionLifetimeMs).toBe(350)
  })

  it('metricTotals sums the latest value of every session ever registered, removed ones included', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    registry.register('c1', new FakeSession('a'))
    registry.register('c2', new FakeSession('b'))
    registry.updateMetrics('a', { tokens: 100 })
    registry.updateMetrics('b', { tokens: 50, costUsd: 0.5 })
    expect(registry.getMetrics().metricTotals).toEqual({ tokens: 150, costUsd: 0.5 })
    registry.updateMetrics('a', { tokens: 150 })
    expect(registry.getMetrics().metricTotals).toEqual({ tokens: 200, costUsd: 0.5 })
    await registry.unregister('b')
    expect(registry.getMetrics().metricTotals).toEqual({ tokens: 200, costUsd: 0.5 })
    registry.register('c3', new FakeSession('c'))
    registry.updateMetrics('c', { tokens: 10, costUsd: 0.25 })
    registry.updateMetrics('a', { tokens: 40 })
    await registry.cleanupClient('c1')
    const totals = registry.getMetrics().metricTotals
    expect(totals.tokens).toBe(100)
    expect(totals.costUsd).toBeCloseTo(0.75, 10)
  })
})

describe('list', () => {
  it('returns getSessionInfo rows in registration order, 100 per page by default', () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ clock })
    const ids: string[] = []
    for (let i = 0; i < 250; i++) {
      registry.register(`c${i % 3}`, new FakeSession(`s${i}`))
      ids.push(`s${i}`)
      clock.advance(1)
    }
    registry.updateMetrics('s5', { tokens: 3 })
    const first = registry.list()
    expect(first.sessions).toHaveLength(100)
    expect(first.sessions).toEqual(ids.slice(0, 100).map((id) => registry.getSessionInfo(id)))
    expect(typeof first.next).toBe('string')
    const second = registry.list({ after: first.next })
    expect(second.sessions.map((row) => row.sessionId)).toEqual(ids.slice(100, 200))
    const third = registry.list({ after: second.next })
    expect(third.sessions.map((row) => row.sessionId)).toEqual(ids.slice(200))
    expect('next' in third).toBe(false)
  })

  it('paging with next visits every session exactly once while sessions, the cursor\u2019s own included, are removed and added between pages', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const order: string[] = []
    let n = 0
    const add = () => {
      const session = new FakeSession(`s${n++}`)
      registry.register(`c${n % 3}`, session)
      order.push(session.id)
    }
    for (let i = 0; i < 40; i++) add()
    const visited: string[] = []
    const removedBeforeVisit = new Set<string>()
    let page = registry.list({ limit: 6 })
    for (let rounds = 0; ; rounds++) {
      expect(rounds).toBeLessThan(100)
      visited.push(...page.sessions.map((row) => row.sessionId))
      if (page.next === undefined) break
      const visitedSet = new Set(visited)
      // The cursor's own session goes...
      await registry.unregister(page.sessions[page.sessions.length - 1].sessionId)
      // ...and one visited earlier, and one not visited yet...
      if (visited.length > 3) await registry.unregister(visited[visited.length - 4])
      const ahead = order.filter((id) => !visitedSet.has(id) && registry.getSessionInfo(id) !== undefined)
      if (ahead.length > 2) {
        await registry.unregister(ahead[1])
        removedBeforeVisit.add(ahead[1])
      }
      // ...and new ones arrive (taking the freed slots).
      if (rounds < 6) {
        add()
        add()
      }
      page = registry.list({ limit: 6, after: page.next })
    }
    expect(visited).toEqual(order.filter((id) => !removedBeforeVisit.has(id)))
    expect(new Set(visited).size).toBe(visited.length)
  })

  it('clientId filters, with paging within the client across removals', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    for (let i = 0; i < 12; i++) registry.register(`c${i % 3}`, new FakeSession(`s${i}`))
    const all = registry.list({ clientId: 'c1' })
    expect(all.sessions.map((row) => row.sessionId)).toEqual(['s1', 's4', 's7', 's10'])
    expect(all.sessions.every((row) => row.clientId === 'c1')).toBe(true)
    expect('next' in all).toBe(false)
    const first = registry.list({ clientId: 'c1', limit: 2 })
    expect(first.sessions.map((row) => row.sessionId)).toEqual(['s1', 's4'])
    await registry.unregister('s4')
    registry.register('c1', new FakeSession('late'))
    registry.register('c2', new FakeSession('late-other'))
    const second = registry.list({ clientId: 'c1', limit: 2, after: first.next })
    expect(second.sessions.map((row) => row.sessionId)).toEqual(['s7', 's10'])
    const third = registry.list({ clientId: 'c1', limit: 2, after: second.next })
    expect(third.sessions.map((row) => row.sessionId)).toEqual(['late'])
    expect('next' in third).toBe(false)
    expect(registry.list({ clientId: 'nobody' })).toEqual({ sessions: [] })
  })

  it('leaves next out on the last page, also when it is exactly full or empty', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    expect(registry.list()).toEqual({ sessions: [] })
    for (let i = 0; i < 5; i++) registry.register('c1', new FakeSession(`s${i}`))
    const exact = registry.list({ limit: 5 })
    expect(exact.sessions).toHaveLength(5)
    expect('next' in exact).toBe(false)
    const partial = registry.list({ limit: 4 })
    expect(partial.next).toBeDefined()
    const last = registry.list({ limit: 4, after: partial.next })
    expect(last.sessions.map((row) => row.sessionId)).toEqual(['s4'])
    expect('next' in last).toBe(false)
  })

  it.each([
    ['0', 0],
    ['-1', -1],
    ['1.5', 1.5],
    ['NaN', Number.NaN],
    ["'x'", 'x'],
    ["'10'", '10'],
  ])('rejects limit %s with a TypeError', (_, limit) => {
    const registry = new NitySessionRegistry<FakeSession>()
    registry.register('c1', new FakeSession('a'))
    const error = thrown(() => registry.list({ limit: limit as number }))
    expect(error).toBeInstanceOf(TypeError)
  })

  it.each([
    ["'not-a-cursor'", 'not-a-cursor'],
    ["''", ''],
    ["'abc'", 'abc'],
    ["'1.2.3'", '1.2.3'],
    ["'-1.0'", '-1.0'],
    ['a number', 42],
    ['an object', {}],
  ])('rejects an after that is not a cursor from list() (%s) with ERR_INVALID_CURSOR', (_, after) => {
    const registry = new NitySessionRegistry<FakeSession>()
    for (let i = 0; i < 3; i++) registry.register('c1', new FakeSession(`s${i}`))
    const error = thrown(() => registry.list({ limit: 1, after: after as string }))
    expect(error.code).toBe('ERR_INVALID_CURSOR')
  })
})

describe('shutdown', () => {
  it('closeAll closes every session with reason shutdown, resolves with the count, and the registry takes sessions again', async () => {
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({ onSessionClosed: (event) => events.push(event) })
    const all = sessions('s', 5)
    all.forEach((session, i) => registry.register(`c${i % 2}`, session))
    await expect(registry.closeAll()).resolves.toBe(5)
    expect(all.every((session) => session.closeCalls === 1)).toBe(true)
    expect(events.map((event) => event.reason)).toEqual(Array(5).fill('shutdown'))
    expect(new Set(events.map((event) => event.sessionId))).toEqual(new Set(all.map((session) => session.id)))
    expect(registry.getStats()).toEqual({ totalSessions: 0, activeClients: 0, sessionsByClient: {} })
    const again = new FakeSession('again')
    registry.register('c1', again)
    expect(registry.getSession('again')).toBe(again)
    expect(registry.getMetrics().closesByReason.shutdown).toBe(5)
  })

  it('closeAll gives up on never-settling closes at closeTimeoutMs on the injected clock, within the concurrency bound', async () => {
    const clock = new ManualClock()
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      clock,
      closeTimeoutMs: 1_000,
      maxConcurrentCloses: 2,
      onSessionClosed: (event) => events.push(event),
    })
    const all = sessions('n', 5, { kind: 'never' })
    for (const session of all) registry.register('c1', session)
    let result: number | undefined
    const done = registry.closeAll().then((count) => {
      result = count
      return count
    })
    const started = () => totalCloseCalls(all)
    await until(() => started() >= 2)
    await flush()
    expect(started()).toBe(2)
    clock.advance(999)
    await flush()
    expect(events).toHaveLength(0)
    expect(started()).toBe(2)
    clock.advance(1)
    await until(() => started() >= 4)
    await flush()
    expect(events).toHaveLength(2)
    expect(started()).toBe(4)
    expect(result).toBeUndefined()
    clock.advance(1_000)
    await until(() => started() >= 5)
    await flush()
    expect(events).toHaveLength(4)
    expect(result).toBeUndefined()
    clock.advance(1_000)
    await expect(done).resolves.toBe(5)
    expect(events).toHaveLength(5)
    for (const event of events) {
      expect(event.reason).toBe('shutdown')
      expect(event.timedOut).toBe(true)
      expect((event.error as CodedError).code).toBe('ERR_CLOSE_TIMEOUT')
      expect(event.durationMs).toBe(1_000)
    }
    expect(all.every((session) => session.closeCalls === 1)).toBe(true)
    expect(registry.getMetrics().closeTimeouts).toBe(5)
  })

  it('dispose closes everything with reason shutdown; afterwards register throws ERR_REGISTRY_DISPOSED and changes nothing, and startAutoCleanup throws it too', async () => {
    const clock = new ManualClock()
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      clock,
      cleanupIntervalMs: 1_000,
      onSessionClosed: (event) => events.push(event),
    })
    const all = sessions('s', 4)
    all.forEach((session, i) => registry.register(`c${i % 2}`, session))
    await expect(registry.dispose()).resolves.toBe(4)
    expect(all.every((session) => session.closeCalls === 1)).toBe(true)
    expect(events.map((event) => event.reason)).toEqual(Array(4).fill('shutdown'))
    const before = snapshot(registry)
    const late = new FakeSession('late')
    const error = thrown(() => registry.register('c1', late))
    expect(error.code).toBe('ERR_REGISTRY_DISPOSED')
    expect(snapshot(registry)).toEqual(before)
    expect(registry.getSession('late')).toBeUndefined()
    expect(late.closeCalls).toBe(0)
    expect(thrown(() => registry.startAutoCleanup()).code).toBe('ERR_REGISTRY_DISPOSED')
    expect(thrown(() => registry.startAutoCleanup(500)).code).toBe('ERR_REGISTRY_DISPOSED')
  })

  it('calling dispose() twice is safe: the second resolves with 0 and nothing closes twice', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const all = sessions('m', 3, { kind: 'manual' })
    for (const session of all) registry.register('c1', session)
    const first = registry.dispose()
    await expect(registry.dispose()).resolves.toBe(0)
    await until(() => totalCloseCalls(all) === 3)
    for (const session of all) session.settle!.resolve()
    await expect(first).resolves.toBe(3)
    await expect(registry.dispose()).resolves.toBe(0)
    expect(all.every((session) => session.closeCalls === 1)).toBe(true)
    expect(thrown(() => registry.register('c1', new FakeSession('late'))).code).toBe('ERR_REGISTRY_DISPOSED')
  })

  it('calling closeAll() twice is safe: the second resolves with 0 and nothing closes twice', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const all = sessions('m', 3, { kind: 'manual' })
    for (const session of all) registry.register('c1', session)
    const first = registry.closeAll()
    await expect(registry.closeAll()).resolves.toBe(0)
    await until(() => totalCloseCalls(all) === 3)
    for (const session of all) session.settle!.resolve()
    await expect(first).resolves.toBe(3)
    await expect(registry.closeAll()).resolves.toBe(0)
    expect(all.every((session) => session.closeCalls === 1)).toBe(true)
    expect(registry.getMetrics().closesByReason.shutdown).toBe(3)
  })
})
