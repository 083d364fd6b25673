// getSession, getClientSessions, getStats, getSessionInfo, list and
// getMetrics, under jest: jest runs each test file in its own vm context, so
// the arrays and objects the registry hands out must be of the caller's
// realm (Array.prototype, Object.prototype) for `toBeInstanceOf`,
// `toStrictEqual` and prototype checks to hold, as they do in plain Node.
import { describe, expect, it } from '@jest/globals'
import { NitySessionRegistry } from 'nity-session-registry'
import { FakeSession } from '../helpers/sessions'

const reasons = {
  unregister: 0,
  cleanupClient: 0,
  cleanupStale: 0,
  idle: 0,
  evicted: 0,
  shutdown: 0,
  remote: 0,
  conflict: 0,
}

function expectPlainObject(value: unknown): void {
  expect(typeof value).toBe('object')
  expect(value).not.toBeNull()
  expect(Object.getPrototypeOf(value)).toBe(Object.prototype)
  expect(value).toBeInstanceOf(Object)
}

function expectArray(value: unknown): void {
  expect(value).toBeInstanceOf(Array)
  expect(Array.isArray(value)).toBe(true)
  // biome-ignore lint/suspicious/useIsArray: instanceof is what depends on the realm
  expect(value instanceof Array).toBe(true)
  expect(Object.getPrototypeOf(value)).toBe(Array.prototype)
}

describe('getClientSessions and getSession, under jest', () => {
  it('getClientSessions returns an Array of this realm for a known client, holding the very handles', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a')
    const b = new FakeSession('b')
    registry.register('c', a)
    registry.register('c', b)
    const found = registry.getClientSessions('c')
    expectArray(found)
    expect(found).toEqual([a, b])
    expect(found).toStrictEqual([a, b])
    expect(found[0]).toBe(a)
    expect(found[1]).toBe(b)
    expect(found.map((session) => session.id)).toEqual(['a', 'b'])
  })

  it('getClientSessions returns an empty Array of this realm for an unknown client', () => {
    const registry = new NitySessionRegistry()
    const none = registry.getClientSessions('nobody')
    expectArray(none)
    expect(none).toEqual([])
    expect(none).toStrictEqual([])
  })

  it('each call returns a new array', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    registry.register('c', new FakeSession('a'))
    const first = registry.getClientSessions('c')
    first.push(new FakeSession('intruder'))
    expect(registry.getClientSessions('c')).not.toBe(first)
    expect(registry.getClientSessions('c')).toHaveLength(1)
  })

  it('getSession returns the handle itself, or undefined', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a')
    registry.register('c', a)
    expect(registry.getSession('a')).toBe(a)
    expect(registry.getSession('a')).toBeInstanceOf(FakeSession)
    expect(registry.getSession('nope')).toBeUndefined()
  })
})

describe('getStats, under jest', () => {
  it('is a plain object of this realm, and so is sessionsByClient', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    registry.register('client-a', new FakeSession('a1'))
    registry.register('client-a', new FakeSession('a2'))
    registry.register('client-b', new FakeSession('b1'))
    const stats = registry.getStats()
    expectPlainObject(stats)
    expectPlainObject(stats.sessionsByClient)
    expect(stats).toEqual({ totalSessions: 3, activeClients: 2, sessionsByClient: { 'client-a': 2, 'client-b': 1 } })
    expect(stats).toStrictEqual({
      totalSessions: 3,
      activeClients: 2,
      sessionsByClient: { 'client-a': 2, 'client-b': 1 },
    })
  })

  it('of an empty registry equals the plain literal', () => {
    const stats = new NitySessionRegistry().getStats()
    expectPlainObject(stats)
    expectPlainObject(stats.sessionsByClient)
    expect(stats).toStrictEqual({ totalSessions: 0, activeClients: 0, sessionsByClient: {} })
  })
})

describe('getSessionInfo and list, under jest', () => {
  it('getSessionInfo is a plain object of this realm, with plain metrics', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    registry.register('c', new FakeSession('s1'))
    expect(registry.updateMetrics('s1', { tokens: 150, costUsd: 0.01 })).toBe(true)
    const info = registry.getSessionInfo('s1')
    expectPlainObject(info)
    expectPlainObject(info?.metrics)
    const expected = {
      sessionId: 's1',
      clientId: 'c',
      registeredAt: expect.any(Number),
      lastActivityAt: expect.any(Number),
      metrics: { tokens: 150, costUsd: 0.01 },
    }
    expect(info).toEqual(expected)
    expect(info).toStrictEqual(expected)
    expect(registry.getSessionInfo('nope')).toBeUndefined()
  })

  it('list() returns { sessions: Array, next? } of this realm, rows plain objects', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    for (const id of ['s1', 's2', 's3']) registry.register(id === 's3' ? 'd' : 'c', new FakeSession(id))
    const all = registry.list()
    expectPlainObject(all)
    expectArray(all.sessions)
    expect(all.next).toBeUndefined()
    expect(all.sessions.map((row) => row.sessionId)).toEqual(['s1', 's2', 's3'])
    for (const row of all.sessions) {
      expectPlainObject(row)
      expectPlainObject(row.metrics)
    }
    expect(all).toStrictEqual({
      sessions: [
        {
          sessionId: 's1',
          clientId: 'c',
          registeredAt: expect.any(Number),
          lastActivityAt: expect.any(Number),
          metrics: {},
        },
        {
          sessionId: 's2',
          clientId: 'c',
          registeredAt: expect.any(Number),
          lastActivityAt: expect.any(Number),
          metrics: {},
        },
        {
          sessionId: 's3',
          clientId: 'd',
          registeredAt: expect.any(Number),
          lastActivityAt: expect.any(Number),
          metrics: {},
        },
      ],
    })
  })

  it('list() pages: a page with more to come carries a string next, and each page is of this realm', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    for (const id of ['s1', 's2', 's3']) registry.register('c', new FakeSession(id))
    const first = registry.list({ limit: 2 })
    expectPlainObject(first)
    expectArray(first.sessions)
    expect(typeof first.next).toBe('string')
    expect(first.sessions.map((row) => row.sessionId)).toEqual(['s1', 's2'])
    const second = registry.list({ limit: 2, after: first.next })
    expectPlainObject(second)
    expectArray(second.sessions)
    expect(second.sessions.map((row) => row.sessionId)).toEqual(['s3'])
    expect(second.next).toBeUndefined()
  })

  it('list({ clientId }) of an unknown client is an empty page of this realm', () => {
    const page = new NitySessionRegistry().list({ clientId: 'nobody' })
    expectPlainObject(page)
    expectArray(page.sessions)
    expect(page).toStrictEqual({ sessions: [] })
  })
})

describe('getMetrics, under jest', () => {
  it('of a new registry is a plain object of this realm equal to the plain literal', () => {
    const metrics = new NitySessionRegistry().getMetrics()
    expectPlainObject(metrics)
    expectPlainObject(metrics.closesByReason)
    expectPlainObject(metrics.metricTotals)
    const expected = {
      sessionsRegistered: 0,
      sessionsClosed: 0,
      closesByReason: reasons,
      closeFailures: 0,
      closeTimeouts: 0,
      averageCloseDurationMs: 0,
      maxCloseDurationMs: 0,
      averageSessionLifetimeMs: 0,
      metricTotals: {},
    }
    expect(metrics).toEqual(expected)
    expect(metrics).toStrictEqual(expected)
  })

  it('after some work, still plain objects, counts equal to plain literals', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    registry.register('c', new FakeSession('s1'))
    registry.register('c', new FakeSession('s2', { kind: 'reject', error: new Error('nope') }))
    registry.updateMetrics('s1', { tokens: 100 })
    registry.updateMetrics('s2', { tokens: 50 })
    await registry.cleanupClient('c')
    const metrics = registry.getMetrics()
    expectPlainObject(metrics)
    expectPlainObject(metrics.closesByReason)
    expectPlainObject(metrics.metricTotals)
    expect(metrics).toMatchObject({ sessionsRegistered: 2, sessionsClosed: 2, closeFailures: 1, closeTimeouts: 0 })
    expect(metrics.closesByReason).toStrictEqual({ ...reasons, cleanupClient: 2 })
    expect(metrics.metricTotals).toStrictEqual({ tokens: 150 })
  })
})
