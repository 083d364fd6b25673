// What the registry's errors say, and that every failure has a documented
// code: messages name what was wrong (an empty id, an unknown key, Infinity
// and NaN as such), bad arguments of every call are TypeErrors with a code,
// a failed call changes nothing, and the codes form the exported union type
// `NityErrorCode`.
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  NitySessionRegistry,
  type NityErrorCode,
  type NitySessionClosedEvent,
  type NitySessionHandle,
  type NitySessionHealth,
  type NitySessionRegistryOptions,
} from 'nity-session-registry'
import { ManualClock } from './helpers/clock'
import { FakeSession, flush } from './helpers/sessions'

/** Every code the registry throws or rejects with. */
const codes: NityErrorCode[] = [
  'ERR_INVALID_CLIENT_ID',
  'ERR_INVALID_SESSION',
  'ERR_INVALID_SESSION_ID',
  'ERR_SESSION_ALREADY_REGISTERED',
  'ERR_SESSION_LIMIT',
  'ERR_CLIENT_SESSION_LIMIT',
  'ERR_REGISTRY_DISPOSED',
  'ERR_INVALID_CURSOR',
  'ERR_INVALID_OPTIONS',
  'ERR_INVALID_LISTENER',
  'ERR_INVALID_METRICS',
  'ERR_INVALID_ARG',
  'ERR_CLOSE_TIMEOUT',
]

// @ts-expect-error ERR_CLOSE_FAILED is no longer a code: a close that cannot start is ERR_INVALID_SESSION.
const gone: NityErrorCode = 'ERR_CLOSE_FAILED'
void gone

// @ts-expect-error NityErrorCode is a union of string literals, not string.
const anyString: NityErrorCode = 'ERR_SOMETHING_ELSE'
void anyString

/** Every error the registry threw or rejected with in this file, for the last test. */
const seen: unknown[] = []

/** What `fn` threw (fails the test when it returned); recorded for the code check. */
function thrown(fn: () => unknown): unknown {
  let result: unknown
  try {
    result = fn()
  } catch (error) {
    seen.push(error)
    return error
  }
  throw new Error(`expected the call to throw, but it returned ${String(result)}`)
}

/** What `promise` rejected with (fails the test when it resolved); recorded for the code check. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  let value: unknown
  try {
    value = await promise
  } catch (error) {
    seen.push(error)
    return error
  }
  throw new Error(`expected the promise to reject, but it resolved with ${String(value)}`)
}

/** A TypeError with this code; returns its message. */
function expectTypeError(error: unknown, code: NityErrorCode): string {
  expect(error).toBeInstanceOf(TypeError)
  expect(error).toMatchObject({ code })
  return (error as Error).message
}

/** The registry's state, less the activity times a lookup moves. */
function state(registry: NitySessionRegistry<FakeSession>) {
  return {
    stats: registry.getStats(),
    metrics: registry.getMetrics(),
    rows: registry.list().sessions.map(({ lastActivityAt: _, ...row }) => row),
  }
}

/** A registry holding `kept` (client `keep`, with a metric), and a check that a failed call changed none of it. */
function seeded(options?: NitySessionRegistryOptions) {
  const registry = new NitySessionRegistry<FakeSession>(options)
  const kept = new FakeSession('kept')
  registry.register('keep', kept)
  registry.updateMetrics('kept', { tokens: 7 })
  const before = state(registry)
  const expectUnchanged = (): void => {
    expect(state(registry)).toEqual(before)
    expect(registry.getSession('kept')).toBe(kept)
    expect(kept.closeCalls).toBe(0)
  }
  return { registry, kept, expectUnchanged }
}

/** Matches "empty" said of the value (not the "non-empty" of a requirement), or the value itself. */
const saysEmpty = /(?<!non-)\bempty\b|''/

describe('a session with an empty id', () => {
  it.each([
    ['a plain object', { id: '', close() {} }],
    ['a class instance', new FakeSession('')],
  ])('%s: a TypeError ERR_INVALID_SESSION that names session.id as empty and does not blame close', (_, session) => {
    const { registry, expectUnchanged } = seeded()
    const message = expectTypeError(
      thrown(() => registry.register('c', session as FakeSession)),
      'ERR_INVALID_SESSION',
    )
    expect(message).toContain('session.id')
    expect(message).toMatch(saysEmpty)
    expect(message).not.toMatch(/close/)
    expectUnchanged()
  })
})

describe('Infinity and NaN are printed as such', () => {
  it.each([
    ['maxSessions', Infinity, /(?<!-)Infinity/],
    ['cleanupIntervalMs', NaN, /NaN/],
    ['idleTimeoutMs', -Infinity, /-Infinity/],
    ['maxSessionsPerClient', -Infinity, /-Infinity/],
    ['maxConcurrentCloses', NaN, /NaN/],
  ] as const)(
    'new NitySessionRegistry({ %s: %s }): ERR_INVALID_OPTIONS naming the option and the value',
    (name, value, printed) => {
      const message = expectTypeError(
        thrown(() => new NitySessionRegistry({ [name]: value } as NitySessionRegistryOptions)),
        'ERR_INVALID_OPTIONS',
      )
      expect(message).toContain(name)
      expect(message).toMatch(printed)
      expect(message).not.toMatch(/\binf\b/)
    },
  )

  it('updateMetrics with NaN: ERR_INVALID_METRICS naming the metric and NaN; nothing is merged', () => {
    const { registry, expectUnchanged } = seeded()
    const message = expectTypeError(
      thrown(() => registry.updateMetrics('kept', { tokens: NaN })),
      'ERR_INVALID_METRICS',
    )
    expect(message).toContain('tokens')
    expect(message).toMatch(/NaN/)
    expectUnchanged()
  })

  it('updateMetrics with Infinity: ERR_INVALID_METRICS naming Infinity; nothing of the call is merged', () => {
    const { registry, expectUnchanged } = seeded()
    const message = expectTypeError(
      thrown(() => registry.updateMetrics('kept', { tokens: 1, costUsd: Infinity })),
      'ERR_INVALID_METRICS',
    )
    expect(message).toContain('costUsd')
    expect(message).toMatch(/(?<!-)Infinity/)
    expect(message).not.toMatch(/\binf\b/)
    expectUnchanged()
  })

  it('startAutoCleanup(NaN) and list({ limit: Infinity }) print NaN and Infinity', () => {
    const { registry, expectUnchanged } = seeded()
    expect(
      expectTypeError(
        thrown(() => registry.startAutoCleanup(NaN)),
        'ERR_INVALID_ARG',
      ),
    ).toMatch(/NaN/)
    const message = expectTypeError(
      thrown(() => registry.list({ limit: Infinity })),
      'ERR_INVALID_ARG',
    )
    expect(message).toMatch(/(?<!-)Infinity/)
    expect(message).not.toMatch(/\binf\b/)
    expectUnchanged()
  })
})

describe('calling the class without new', () => {
  it('throws a TypeError and touches nothing global', () => {
    const before = Object.getOwnPropertyNames(globalThis)
    const symbolsBefore = Object.getOwnPropertySymbols(globalThis)
    let error: unknown
    try {
      ;(NitySessionRegistry as unknown as () => unknown)()
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(TypeError)
    expect(Object.getOwnPropertyNames(globalThis)).toEqual(before)
    expect(Object.getOwnPropertySymbols(globalThis)).toEqual(symbolsBefore)
  })

  it('with an object as this, throws a TypeError and leaves the object alone', () => {
    const target = {}
    let error: unknown
    try {
      Reflect.apply(NitySessionRegistry as unknown as () => unknown, target, [])
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(TypeError)
    expect(Reflect.ownKeys(target)).toEqual([])
    expect(Object.getPrototypeOf(target)).toBe(Object.prototype)
  })
})

describe('unknown keys are errors', () => {
  it('a misspelled option: ERR_INVALID_OPTIONS naming the key', () => {
    const message = expectTypeError(
      thrown(() => new NitySessionRegistry({ maxSesions: 5 } as never)),
      'ERR_INVALID_OPTIONS',
    )
    expect(message).toContain('maxSesions')
  })

  it('a misspelled option: the message suggests the option meant', () => {
    const message = expectTypeError(
      thrown(() => new NitySessionRegistry({ maxSesions: 5 } as never)),
      'ERR_INVALID_OPTIONS',
    )
    expect(message).toMatch(/\bmaxSessions\b/)
  })

  it.each(['cleanupInterval', 'onSessionClose', 'idleTimeout', 'closeTimeout'])(
    'option %s: ERR_INVALID_OPTIONS naming it',
    (key) => {
      const message = expectTypeError(
        thrown(() => new NitySessionRegistry({ [key]: 5 } as never)),
        'ERR_INVALID_OPTIONS',
      )
      expect(message).toContain(key)
    },
  )

  it('every documented option is accepted', async () => {
    const options: NitySessionRegistryOptions = {
      onSessionClosed: () => {},
      cleanupIntervalMs: 60_000,
      idleTimeoutMs: 60_000,
      closeTimeoutMs: 1_000,
      maxConcurrentCloses: 4,
      maxSessions: 10,
      maxSessionsPerClient: 2,
      evictIdle: true,
      clock: new ManualClock(),
    }
    const registry = new NitySessionRegistry(options)
    await registry.dispose()
    expect(() => new NitySessionRegistry({ maxSessions: undefined, evictIdle: false })).not.toThrow()
  })

  it('list({ limt: 5 }): ERR_INVALID_ARG naming the key, and nothing changes', () => {
    const { registry, expectUnchanged } = seeded()
    const message = expectTypeError(
      thrown(() => registry.list({ limt: 5 } as never)),
      'ERR_INVALID_ARG',
    )
    expect(message).toContain('limt')
    expectUnchanged()
  })

  it('list accepts its documented keys, after: undefined included', () => {
    const { registry } = seeded()
    const first = registry.list({ clientId: 'keep', limit: 10, after: undefined })
    expect(first.sessions.map((row) => row.sessionId)).toEqual(['kept'])
    expect(first.next).toBeUndefined()
  })
})

describe('ERR_INVALID_ARG', () => {
  it.each([
    ['-1', -1],
    ['0', 0],
    ['NaN', NaN],
    ["'5'", '5'],
    ['null', null],
  ])('startAutoCleanup(%s): a TypeError ERR_INVALID_ARG, and nothing changes', (_, interval) => {
    const { registry, expectUnchanged } = seeded()
    expectTypeError(
      thrown(() => registry.startAutoCleanup(interval as never)),
      'ERR_INVALID_ARG',
    )
    expectUnchanged()
  })

  it('startAutoCleanup() without an interval and without the option: ERR_INVALID_ARG', () => {
    const { registry, expectUnchanged } = seeded()
    const message = expectTypeError(
      thrown(() => registry.startAutoCleanup()),
      'ERR_INVALID_ARG',
    )
    expect(message).toMatch(/cleanupIntervalMs|intervalMs/)
    expectUnchanged()
  })

  it.each([
    ['{ limit: 0 }', { limit: 0 }],
    ['{ limit: 1.5 }', { limit: 1.5 }],
    ['{ limit: -1 }', { limit: -1 }],
    ["{ limit: '5' }", { limit: '5' }],
    ["'x'", 'x'],
    ['42', 42],
  ])('list(%s): a TypeError ERR_INVALID_ARG, and nothing changes', (_, options) => {
    const { registry, expectUnchanged } = seeded()
    expectTypeError(
      thrown(() => registry.list(options as never)),
      'ERR_INVALID_ARG',
    )
    expectUnchanged()
  })

  it('is documented in the README, with every other code, and ERR_CLOSE_FAILED is not', () => {
    const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')
    expect(codes.filter((code) => !readme.includes(code))).toEqual([])
    expect(readme.includes('ERR_CLOSE_FAILED')).toBe(false)
  })
})

describe('ERR_CLOSE_FAILED is gone: a close that cannot be called is ERR_INVALID_SESSION', () => {
  /** A plain session whose `close` can be taken away after registration. */
  interface Breakable {
    id: string
    close?: unknown
    getHealth(): NitySessionHealth
    isRunning(): boolean
  }

  function breakable(id: string): Breakable {
    return {
      id,
      close: () => {},
      getHealth: () => ({ state: 'error', errorCount: 1, isTimedOut: false, uptime: 0, lastActivity: 0 }),
      isRunning: () => false,
    }
  }

  function breakClose(session: Breakable, how: 'deleted' | 'replaced'): void {
    if (how === 'deleted') delete session.close
    else session.close = 'not a function'
  }

  const asHandle = (session: Breakable): NitySessionHandle => session as unknown as NitySessionHandle

  it.each(['deleted', 'replaced'] as const)(
    'close %s after registration: unregister rejects with a TypeError ERR_INVALID_SESSION and the session is removed',
    async (how) => {
      const events: NitySessionClosedEvent[] = []
      const registry = new NitySessionRegistry({ onSessionClosed: (event) => events.push(event) })
      const session = breakable('s1')
      registry.register('c', asHandle(session))
      breakClose(session, how)
      const error = await rejection(registry.unregister('s1'))
      expectTypeError(error, 'ERR_INVALID_SESSION')
      expect(error).not.toMatchObject({ code: 'ERR_CLOSE_FAILED' })
      expect(registry.getSession('s1')).toBeUndefined()
      expect(registry.getStats()).toEqual({ totalSessions: 0, activeClients: 0, sessionsByClient: {} })
      expect(events).toHaveLength(1)
      expect(events[0].error).toBe(error)
    },
  )

  it.each([
    ['cleanupClient', (r: NitySessionRegistry) => r.cleanupClient('c')],
    ['cleanupStale', (r: NitySessionRegistry) => r.cleanupStale()],
    ['closeAll', (r: NitySessionRegistry) => r.closeAll()],
  ] as const)(
    '%s: each such session is removed and reported to the hooks with a TypeError ERR_INVALID_SESSION',
    async (_, cleanup) => {
      const events: NitySessionClosedEvent[] = []
      const registry = new NitySessionRegistry({ onSessionClosed: (event) => events.push(event) })
      const sessions: [Breakable, 'deleted' | 'replaced'][] = [
        [breakable('a'), 'deleted'],
        [breakable('b'), 'replaced'],
        [breakable('c'), 'deleted'],
      ]
      for (const [session, how] of sessions) {
        registry.register('c', asHandle(session))
        breakClose(session, how)
      }
      await expect(cleanup(registry)).resolves.toBe(3)
      await flush()
      expect(registry.getStats()).toEqual({ totalSessions: 0, activeClients: 0, sessionsByClient: {} })
      expect(events.map((event) => event.sessionId).sort()).toEqual(['a', 'b', 'c'])
      for (const event of events) {
        seen.push(event.error)
        expectTypeError(event.error, 'ERR_INVALID_SESSION')
        expect(event.error).not.toMatchObject({ code: 'ERR_CLOSE_FAILED' })
      }
      expect(registry.getMetrics().closeFailures).toBe(3)
    },
  )
})

describe('the other failures, each with its code, changing nothing', () => {
  it('ERR_INVALID_CLIENT_ID and ERR_INVALID_SESSION_ID, thrown and rejected', async () => {
    const { registry, expectUnchanged } = seeded()
    expectTypeError(
      thrown(() => registry.register(42 as unknown as string, new FakeSession('s'))),
      'ERR_INVALID_CLIENT_ID',
    )
    expectTypeError(
      thrown(() => registry.register('', new FakeSession('s'))),
      'ERR_INVALID_CLIENT_ID',
    )
    expectTypeError(
      thrown(() => registry.getClientSessions(42 as unknown as string)),
      'ERR_INVALID_CLIENT_ID',
    )
    expectTypeError(await rejection(registry.cleanupClient(42 as unknown as string)), 'ERR_INVALID_CLIENT_ID')
    expectTypeError(
      thrown(() => registry.getSession(42 as unknown as string)),
      'ERR_INVALID_SESSION_ID',
    )
    expectTypeError(
      thrown(() => registry.touch(42 as unknown as string)),
      'ERR_INVALID_SESSION_ID',
    )
    expectTypeError(
      thrown(() => registry.getSessionInfo(42 as unknown as string)),
      'ERR_INVALID_SESSION_ID',
    )
    expectTypeError(await rejection(registry.unregister(42 as unknown as string)), 'ERR_INVALID_SESSION_ID')
    expectUnchanged()
  })

  it('ERR_INVALID_SESSION for a session that is not a handle', () => {
    const { registry, expectUnchanged } = seeded()
    for (const bad of [
      null,
      'session',
      { close: () => {} },
      { id: 7, close: () => {} },
      { id: 's' },
      { id: 's', close: 'yes' },
    ]) {
      expectTypeError(
        thrown(() => registry.register('c', bad as unknown as FakeSession)),
        'ERR_INVALID_SESSION',
      )
    }
    expectUnchanged()
  })

  it('ERR_INVALID_OPTIONS, ERR_INVALID_LISTENER and ERR_INVALID_CURSOR', () => {
    const { registry, expectUnchanged } = seeded()
    expectTypeError(
      thrown(() => new NitySessionRegistry(1 as never)),
      'ERR_INVALID_OPTIONS',
    )
    expectTypeError(
      thrown(() => new NitySessionRegistry({ maxSessions: 0 })),
      'ERR_INVALID_OPTIONS',
    )
    expectTypeError(
      thrown(() => new NitySessionRegistry({ onSessionClosed: 'nope' as never })),
      'ERR_INVALID_LISTENER',
    )
    expectTypeError(
      thrown(() => registry.onSessionClosed(1 as never)),
      'ERR_INVALID_LISTENER',
    )
    expectTypeError(
      thrown(() => registry.list({ after: 'not-a-cursor' })),
      'ERR_INVALID_CURSOR',
    )
    expectTypeError(
      thrown(() => registry.updateMetrics('kept', 5 as never)),
      'ERR_INVALID_METRICS',
    )
    expectUnchanged()
  })

  it('ERR_SESSION_ALREADY_REGISTERED, ERR_SESSION_LIMIT, ERR_CLIENT_SESSION_LIMIT: Errors, not TypeErrors', () => {
    const { registry, expectUnchanged } = seeded({ maxSessions: 2, maxSessionsPerClient: 1 })
    const duplicate = thrown(() => registry.register('other', new FakeSession('kept')))
    expect(duplicate).toBeInstanceOf(Error)
    expect(duplicate).not.toBeInstanceOf(TypeError)
    expect(duplicate).toMatchObject({ code: 'ERR_SESSION_ALREADY_REGISTERED' })
    const perClient = thrown(() => registry.register('keep', new FakeSession('second')))
    expect(perClient).toBeInstanceOf(Error)
    expect(perClient).toMatchObject({ code: 'ERR_CLIENT_SESSION_LIMIT' })
    expectUnchanged()
    registry.register('other', new FakeSession('other'))
    const full = thrown(() => registry.register('third', new FakeSession('third')))
    expect(full).toBeInstanceOf(Error)
    expect(full).toMatchObject({ code: 'ERR_SESSION_LIMIT' })
    expect(registry.getStats().totalSessions).toBe(2)
    expect(registry.getSession('third')).toBeUndefined()
  })

  it('ERR_REGISTRY_DISPOSED after dispose()', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    await registry.dispose()
    const error = thrown(() => registry.register('c', new FakeSession('s1')))
    expect(error).toBeInstanceOf(Error)
    expect(error).toMatchObject({ code: 'ERR_REGISTRY_DISPOSED' })
    expect(registry.getStats()).toEqual({ totalSessions: 0, activeClients: 0, sessionsByClient: {} })
  })

  it('ERR_CLOSE_TIMEOUT at the close deadline', async () => {
    const clock = new ManualClock()
    const registry = new NitySessionRegistry<FakeSession>({ clock, closeTimeoutMs: 1_000 })
    registry.register('c', new FakeSession('stuck', { kind: 'never' }))
    const closing = rejection(registry.unregister('stuck'))
    clock.advance(1_000)
    const error = await closing
    expect(error).toBeInstanceOf(Error)
    expect(error).toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
    expect(registry.getStats().totalSessions).toBe(0)
  })
})

describe('every code', () => {
  // Declared last: runs after every other test of this file has recorded its errors.
  it('every error thrown or rejected with in this file has a code of NityErrorCode, and every code was seen', () => {
    expect(seen.length).toBeGreaterThan(0)
    const known = new Set<string>(codes)
    for (const error of seen) {
      expect(error).toBeInstanceOf(Error)
      const code = (error as { code?: unknown }).code
      expect(typeof code, `code of ${String(error)}`).toBe('string')
      expect(known.has(code as string), `${String(code)} is a NityErrorCode`).toBe(true)
    }
    const codesSeen = new Set(seen.map((error) => (error as { code?: unknown }).code))
    expect([...codesSeen].sort()).toEqual([...codes].sort())
  })
})

// The codes are listed once, with their kinds, in lib/errors.ts; the Rust
// layers only name codes from that list.
describe('the codes the Rust layers make', () => {
  const root = path.join(__dirname, '..')
  const rustSources = ['core/src', 'cluster/src', 'src'].flatMap((dir) =>
    readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.rs'))
      .map((file) => path.join(dir, file)),
  )

  it('are all in the one list of codes (lib/errors.ts, the NityErrorCode union)', async () => {
    const { ERROR_CODES } = await import('../dist/errors.js')
    const named = new Map<string, string>()
    for (const file of rustSources) {
      for (const [code] of readFileSync(path.join(root, file), 'utf8').matchAll(/ERR_[A-Z_]+/g)) {
        named.set(code, file)
      }
    }
    expect(named.size).toBeGreaterThanOrEqual(8)
    const unknown = [...named].filter(([code]) => !(ERROR_CODES as string[]).includes(code))
    expect(unknown).toEqual([])
  })
})
