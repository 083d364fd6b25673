// register, the constructor and the other synchronous calls, under jest:
// jest runs each test file in its own vm context, so the errors the registry
// throws must be made in the caller's realm for `toThrow(TypeError)`,
// `instanceof` and `toBeInstanceOf` to match them, as they do in plain Node.
import { describe, expect, it } from '@jest/globals'
import { NitySessionRegistry } from 'nity-session-registry'
import { FakeSession } from '../helpers/sessions'

/** What `fn` threw (fails the test when it returned). */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  throw new Error('expected the call to throw')
}

/** Checks that `error` is a TypeError of this realm with `code`. */
function expectTypeError(error: unknown, code: string): void {
  expect(error).toBeInstanceOf(TypeError)
  expect(error).toBeInstanceOf(Error)
  expect(error instanceof TypeError).toBe(true)
  expect(error instanceof Error).toBe(true)
  expect(Object.getPrototypeOf(error)).toBe(TypeError.prototype)
  expect(error).toMatchObject({ code })
  expect(typeof (error as Error).message).toBe('string')
  expect(typeof (error as Error).stack).toBe('string')
}

/** Checks that `error` is an Error of this realm with `code`, and not a TypeError. */
function expectPlainError(error: unknown, code: string): void {
  expect(error).toBeInstanceOf(Error)
  expect(error instanceof Error).toBe(true)
  expect(error).not.toBeInstanceOf(TypeError)
  expect(error).toMatchObject({ code })
}

/** A registry holding one session, `kept` of client `keep`, to check failed calls change nothing. */
function seeded(): { registry: NitySessionRegistry<FakeSession>; kept: FakeSession } {
  const registry = new NitySessionRegistry<FakeSession>()
  const kept = new FakeSession('kept')
  registry.register('keep', kept)
  return { registry, kept }
}

function expectUnchanged(registry: NitySessionRegistry<FakeSession>, kept: FakeSession): void {
  expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { keep: 1 } })
  expect(registry.getSession('kept')).toBe(kept)
}

describe('register, under jest: errors of the test realm', () => {
  it('a clientId that is not a string throws a TypeError (toThrow(TypeError)) with code ERR_INVALID_CLIENT_ID', () => {
    const { registry, kept } = seeded()
    const session = new FakeSession('s1')
    expect(() => registry.register(123 as unknown as string, session)).toThrow(TypeError)
    expect(() => registry.register(123 as unknown as string, session)).toThrow(Error)
    const error = thrown(() => registry.register(123 as unknown as string, session))
    expectTypeError(error, 'ERR_INVALID_CLIENT_ID')
    expect((error as Error).message).toMatch(/clientId/)
    expectUnchanged(registry, kept)
  })

  it('an empty clientId throws a TypeError with code ERR_INVALID_CLIENT_ID', () => {
    const { registry, kept } = seeded()
    const session = new FakeSession('s1')
    expect(() => registry.register('', session)).toThrow(TypeError)
    expectTypeError(
      thrown(() => registry.register('', session)),
      'ERR_INVALID_CLIENT_ID',
    )
    expectUnchanged(registry, kept)
  })

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['an object', {}],
    ['an array', []],
    ['a symbol', Symbol('c')],
  ])('a clientId that is %s throws a TypeError of this realm', (_, clientId) => {
    const { registry, kept } = seeded()
    expect(() => registry.register(clientId as unknown as string, new FakeSession('s1'))).toThrow(TypeError)
    expectTypeError(
      thrown(() => registry.register(clientId as unknown as string, new FakeSession('s1'))),
      'ERR_INVALID_CLIENT_ID',
    )
    expectUnchanged(registry, kept)
  })

  it.each([
    ['null', null],
    ['a string', 'session'],
    ['an object without id', { close: () => {} }],
    ['an object with an empty id', { id: '', close: () => {} }],
    ['an object without close', { id: 's' }],
    ['an object whose close is not a function', { id: 's', close: 'yes' }],
  ])('a session that is %s throws a TypeError of this realm with code ERR_INVALID_SESSION', (_, session) => {
    const { registry, kept } = seeded()
    expect(() => registry.register('client', session as unknown as FakeSession)).toThrow(TypeError)
    expectTypeError(
      thrown(() => registry.register('client', session as unknown as FakeSession)),
      'ERR_INVALID_SESSION',
    )
    expectUnchanged(registry, kept)
  })

  it('a taken id throws an Error (not a TypeError) with code ERR_SESSION_ALREADY_REGISTERED, keeping the first', () => {
    const { registry, kept } = seeded()
    expect(() => registry.register('keep', new FakeSession('kept'))).toThrow(Error)
    const error = thrown(() => registry.register('other', new FakeSession('kept')))
    expectPlainError(error, 'ERR_SESSION_ALREADY_REGISTERED')
    expect(Object.getPrototypeOf(error)).toBe(Error.prototype)
    expectUnchanged(registry, kept)
  })

  it('registering the same handle again under the same client returns undefined and throws nothing', () => {
    const { registry, kept } = seeded()
    expect(registry.register('keep', kept)).toBeUndefined()
    expectUnchanged(registry, kept)
  })

  it('what a throwing id getter throws is rethrown as it is', () => {
    const { registry, kept } = seeded()
    const boom = new RangeError('no id for you')
    const session = {
      get id(): string {
        throw boom
      },
      close: () => {},
    }
    expect(() => registry.register('client', session as unknown as FakeSession)).toThrow(boom)
    expect(thrown(() => registry.register('client', session as unknown as FakeSession))).toBe(boom)
    expectUnchanged(registry, kept)
  })

  it('the limits throw Errors of this realm: ERR_SESSION_LIMIT and ERR_CLIENT_SESSION_LIMIT', () => {
    const full = new NitySessionRegistry<FakeSession>({ maxSessions: 1 })
    full.register('a', new FakeSession('a1'))
    expect(() => full.register('b', new FakeSession('b1'))).toThrow(Error)
    expectPlainError(
      thrown(() => full.register('b', new FakeSession('b1'))),
      'ERR_SESSION_LIMIT',
    )

    const perClient = new NitySessionRegistry<FakeSession>({ maxSessionsPerClient: 1 })
    perClient.register('a', new FakeSession('a1'))
    expect(() => perClient.register('a', new FakeSession('a2'))).toThrow(Error)
    expectPlainError(
      thrown(() => perClient.register('a', new FakeSession('a2'))),
      'ERR_CLIENT_SESSION_LIMIT',
    )
    expect(full.getStats().totalSessions).toBe(1)
    expect(perClient.getStats().totalSessions).toBe(1)
  })

  it('a disposed registry throws an Error of this realm with code ERR_REGISTRY_DISPOSED', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    await registry.dispose()
    expect(() => registry.register('c', new FakeSession('s1'))).toThrow(Error)
    expectPlainError(
      thrown(() => registry.register('c', new FakeSession('s1'))),
      'ERR_REGISTRY_DISPOSED',
    )
    expect(registry.getStats().totalSessions).toBe(0)
  })
})

describe('the constructor and the other synchronous calls, under jest', () => {
  it('bad options throw TypeErrors of this realm: ERR_INVALID_OPTIONS, ERR_INVALID_LISTENER', () => {
    expect(() => new NitySessionRegistry({ maxSessions: -1 })).toThrow(TypeError)
    expectTypeError(
      thrown(() => new NitySessionRegistry({ maxSessions: -1 })),
      'ERR_INVALID_OPTIONS',
    )
    expectTypeError(
      thrown(() => new NitySessionRegistry(1 as never)),
      'ERR_INVALID_OPTIONS',
    )
    expect(() => new NitySessionRegistry({ onSessionClosed: 'nope' as never })).toThrow(TypeError)
    expectTypeError(
      thrown(() => new NitySessionRegistry({ onSessionClosed: 'nope' as never })),
      'ERR_INVALID_LISTENER',
    )
  })

  it('a registry is an instance of the class it was made with', () => {
    const registry = new NitySessionRegistry()
    expect(registry).toBeInstanceOf(NitySessionRegistry)
  })

  it('lookups with a bad id throw TypeErrors of this realm: ERR_INVALID_SESSION_ID, ERR_INVALID_CLIENT_ID', () => {
    const { registry, kept } = seeded()
    expect(() => registry.getSession(42 as unknown as string)).toThrow(TypeError)
    expectTypeError(
      thrown(() => registry.getSession(42 as unknown as string)),
      'ERR_INVALID_SESSION_ID',
    )
    expectTypeError(
      thrown(() => registry.getSessionInfo(42 as unknown as string)),
      'ERR_INVALID_SESSION_ID',
    )
    expectTypeError(
      thrown(() => registry.touch(42 as unknown as string)),
      'ERR_INVALID_SESSION_ID',
    )
    expect(() => registry.getClientSessions(42 as unknown as string)).toThrow(TypeError)
    expectTypeError(
      thrown(() => registry.getClientSessions(42 as unknown as string)),
      'ERR_INVALID_CLIENT_ID',
    )
    expectUnchanged(registry, kept)
  })

  it('updateMetrics with a bad value throws a TypeError of this realm with code ERR_INVALID_METRICS', () => {
    const { registry, kept } = seeded()
    expect(() => registry.updateMetrics('kept', { tokens: Number.NaN })).toThrow(TypeError)
    expectTypeError(
      thrown(() => registry.updateMetrics('kept', { tokens: Number.NaN })),
      'ERR_INVALID_METRICS',
    )
    expectTypeError(
      thrown(() => registry.updateMetrics('kept', 5 as never)),
      'ERR_INVALID_METRICS',
    )
    expect(registry.getSessionInfo('kept')?.metrics).toEqual({})
    expectUnchanged(registry, kept)
  })

  it('onSessionClosed with a non-function throws a TypeError of this realm with code ERR_INVALID_LISTENER', () => {
    const { registry } = seeded()
    expect(() => registry.onSessionClosed(42 as never)).toThrow(TypeError)
    expectTypeError(
      thrown(() => registry.onSessionClosed(42 as never)),
      'ERR_INVALID_LISTENER',
    )
    const unsubscribe = registry.onSessionClosed(() => {})
    expect(unsubscribe).toBeInstanceOf(Function)
    expect(unsubscribe()).toBeUndefined()
  })

  it('list and startAutoCleanup with bad arguments throw TypeErrors of this realm', () => {
    const { registry } = seeded()
    expect(() => registry.list({ limit: 0 })).toThrow(TypeError)
    expectTypeError(
      thrown(() => registry.list({ limit: 0 })),
      'ERR_INVALID_ARG',
    )
    expect(() => registry.list({ after: 'not-a-cursor' })).toThrow(TypeError)
    expectTypeError(
      thrown(() => registry.list({ after: 'not-a-cursor' })),
      'ERR_INVALID_CURSOR',
    )
    expect(() => registry.startAutoCleanup(-1)).toThrow(TypeError)
    expectTypeError(
      thrown(() => registry.startAutoCleanup(-1)),
      'ERR_INVALID_ARG',
    )
  })
})
