import { describe, expect, it } from 'vitest'
import { NitySessionRegistry } from 'nity-session-registry'
import { FakeSession } from './helpers/sessions'

describe('new NitySessionRegistry()', () => {
  it('starts empty with no arguments', () => {
    const registry = new NitySessionRegistry()
    expect(registry.getStats()).toEqual({ totalSessions: 0, activeClients: 0, sessionsByClient: {} })
  })

  it('accepts an options object or undefined', () => {
    expect(() => new NitySessionRegistry({})).not.toThrow()
    expect(() => new NitySessionRegistry(undefined)).not.toThrow()
    expect(() => new NitySessionRegistry()).not.toThrow()
  })

  it('rejects options that are not an object (null and arrays included) with a TypeError', () => {
    for (const bad of [1, 'x', true, null, [], [{ maxSessions: 1 }]]) {
      const error = catchError(() => new NitySessionRegistry(bad as never))
      expect(error).toBeInstanceOf(TypeError)
      expect(error).toMatchObject({ code: 'ERR_INVALID_OPTIONS' })
    }
    const error = catchError(() => new NitySessionRegistry({ onSessionClosed: 'nope' as never }))
    expect(error).toBeInstanceOf(TypeError)
    expect(error).toMatchObject({ code: 'ERR_INVALID_LISTENER' })
  })
})

describe('register', () => {
  it('returns nothing, synchronously', () => {
    const registry = new NitySessionRegistry()
    expect(registry.register('client-abc', new FakeSession('a'))).toBeUndefined()
    expect(registry.getStats().totalSessions).toBe(1)
  })

  it('lets one client own many sessions, returned in registration order', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const sessions = ['s1', 's2', 's3'].map((id) => new FakeSession(id))
    for (const s of sessions) registry.register('client-abc', s)
    const found = registry.getClientSessions('client-abc')
    expect(found).toHaveLength(3)
    found.forEach((s, i) => expect(s).toBe(sessions[i]))
  })

  it('hands back the very same objects from every lookup', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a')
    registry.register('client-abc', a)
    expect(registry.getSession('a')).toBe(a)
    expect(registry.getClientSessions('client-abc')[0]).toBe(a)
  })

  it('treats ids as plain strings, pattern characters included', () => {
    const registry = new NitySessionRegistry()
    const ids = ['*', 'a*', 'a:b', 'x/y', '__proto__', 'constructor', 'ünïcødé-🙂', 'x'.repeat(10_000)]
    for (const id of ids) registry.register('c:*', new FakeSession(id))
    for (const id of ids) expect(registry.getSession(id)?.id).toBe(id)
    expect(registry.getSession('a')).toBeUndefined()
    expect(registry.getClientSessions('c:')).toEqual([])
    expect(registry.getClientSessions('c:*')).toHaveLength(ids.length)
  })

  it('accepts class instances and plain objects alike', () => {
    const registry = new NitySessionRegistry()
    const plain = {
      id: 'p',
      close: () => {},
      getHealth: () => ({ state: 'idle' as const, errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: 0 }),
      isRunning: () => false,
      sendTask: async () => ({ output: '' }),
    }
    registry.register('c', plain)
    registry.register('c', new FakeSession('f'))
    expect(registry.getSession('p')).toBe(plain)
  })

  describe('bad input: a TypeError naming what is wrong, and nothing changes', () => {
    const badClientIds: unknown[] = [undefined, null, 42, {}, [], Symbol('c'), () => 'c', '']
    it.each(badClientIds.map((v) => [describeValue(v), v]))('clientId %s', (_, clientId) => {
      const registry = new NitySessionRegistry()
      registry.register('keep', new FakeSession('kept'))
      const error = catchError(() => registry.register(clientId as string, new FakeSession('s')))
      expect(error).toBeInstanceOf(TypeError)
      expect(error).toMatchObject({ code: 'ERR_INVALID_CLIENT_ID' })
      expect((error as Error).message).toMatch(/clientId/)
      expectUnchanged(registry)
    })

    const badSessions: [string, unknown][] = [
      ['undefined', undefined],
      ['null', null],
      ['a string', 'session'],
      ['a function', Object.assign(() => {}, { id: 's', close: () => {} })],
      ['an object without id', { close: () => {} }],
      ['an object with an empty id', { id: '', close: () => {} }],
      ['an object with a numeric id', { id: 7, close: () => {} }],
      ['an object without close', { id: 's' }],
      ['an object whose close is not a function', { id: 's', close: 'yes' }],
    ]
    it.each(badSessions)('session: %s', (_, session) => {
      const registry = new NitySessionRegistry()
      registry.register('keep', new FakeSession('kept'))
      const error = catchError(() => registry.register('client', session as FakeSession))
      expect(error).toBeInstanceOf(TypeError)
      expect(error).toMatchObject({ code: 'ERR_INVALID_SESSION' })
      expect((error as Error).message).toMatch(/session/)
      expectUnchanged(registry)
    })

    it('propagates what a throwing id getter throws, and changes nothing', () => {
      const registry = new NitySessionRegistry()
      registry.register('keep', new FakeSession('kept'))
      const boom = new Error('no id for you')
      const session = {
        get id(): string {
          throw boom
        },
        close: () => {},
      }
      expect(catchError(() => registry.register('client', session as never))).toBe(boom)
      expectUnchanged(registry)
    })
  })

  describe('an id that is already registered', () => {
    it('is a no-op for the same handle under the same client', () => {
      const registry = new NitySessionRegistry<FakeSession>()
      const a = new FakeSession('a')
      registry.register('c1', a)
      registry.register('c1', a)
      expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { c1: 1 } })
      expect(registry.getClientSessions('c1')).toEqual([a])
    })

    it('throws ERR_SESSION_ALREADY_REGISTERED for another handle, keeping the first', () => {
      const registry = new NitySessionRegistry<FakeSession>()
      const first = new FakeSession('a')
      registry.register('c1', first)
      const error = catchError(() => registry.register('c1', new FakeSession('a')))
      expect(error).toBeInstanceOf(Error)
      expect(error).not.toBeInstanceOf(TypeError)
      expect(error).toMatchObject({ code: 'ERR_SESSION_ALREADY_REGISTERED' })
      expect((error as Error).message).toContain("'a'")
      expect(registry.getSession('a')).toBe(first)
      expect(registry.getStats().totalSessions).toBe(1)
    })

    it('throws for the same handle under another client, keeping the first', () => {
      const registry = new NitySessionRegistry<FakeSession>()
      const first = new FakeSession('a')
      registry.register('c1', first)
      expect(catchError(() => registry.register('c2', first))).toMatchObject({ code: 'ERR_SESSION_ALREADY_REGISTERED' })
      expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { c1: 1 } })
      expect(registry.getClientSessions('c2')).toEqual([])
    })
  })
})

describe('getSession / getClientSessions', () => {
  it('getSession finds a session across clients, undefined when unknown', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a')
    const b = new FakeSession('b')
    registry.register('c1', a)
    registry.register('c2', b)
    expect(registry.getSession('b')).toBe(b)
    expect(registry.getSession('nope')).toBeUndefined()
    expect(registry.getSession('')).toBeUndefined()
  })

  it('getClientSessions returns [] for an unknown client', () => {
    expect(new NitySessionRegistry().getClientSessions('nobody')).toEqual([])
  })

  it('getClientSessions returns a fresh array each time; mutating it changes nothing', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a')
    registry.register('c1', a)
    const first = registry.getClientSessions('c1')
    first.pop()
    first.push(new FakeSession('intruder'))
    const second = registry.getClientSessions('c1')
    expect(second).not.toBe(first)
    expect(second).toEqual([a])
    expect(registry.getSession('intruder')).toBeUndefined()
  })

  it('lookups with a non-string id throw a TypeError', () => {
    const registry = new NitySessionRegistry()
    expect(catchError(() => registry.getSession(1 as never))).toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_SESSION_ID',
    })
    expect(catchError(() => registry.getClientSessions(undefined as never))).toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_CLIENT_ID',
    })
  })
})

describe('getStats', () => {
  it('counts sessions and clients, with a plain object of counts per client', () => {
    const registry = new NitySessionRegistry()
    registry.register('c1', new FakeSession('a'))
    registry.register('c1', new FakeSession('b'))
    registry.register('c2', new FakeSession('c'))
    const stats = registry.getStats()
    expect(stats).toEqual({ totalSessions: 3, activeClients: 2, sessionsByClient: { c1: 2, c2: 1 } })
    expect(Object.getPrototypeOf(stats.sessionsByClient)).toBe(Object.prototype)
  })

  it('reports a client called __proto__ as an ordinary key', () => {
    const registry = new NitySessionRegistry()
    registry.register('__proto__', new FakeSession('a'))
    const { sessionsByClient } = registry.getStats()
    expect(Object.keys(sessionsByClient)).toEqual(['__proto__'])
    expect(Object.getOwnPropertyDescriptor(sessionsByClient, '__proto__')?.value).toBe(1)
    expect(Object.getPrototypeOf(sessionsByClient)).toBe(Object.prototype)
  })

  it('returns a new snapshot each call', () => {
    const registry = new NitySessionRegistry()
    const before = registry.getStats()
    registry.register('c1', new FakeSession('a'))
    expect(before.totalSessions).toBe(0)
    expect(registry.getStats().totalSessions).toBe(1)
  })
})

function expectUnchanged(registry: NitySessionRegistry): void {
  expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { keep: 1 } })
  expect(registry.getSession('s')).toBeUndefined()
  expect(registry.getClientSessions('client')).toEqual([])
}

function catchError(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  throw new Error('expected a throw')
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'symbol' || typeof value === 'function') return typeof value
  return Array.isArray(value) ? '[]' : String(value === null ? 'null' : typeof value === 'object' ? '{}' : value)
}
