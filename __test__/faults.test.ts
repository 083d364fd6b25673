import { describe, expect, it } from 'vitest'
import { NitySessionRegistry } from 'nity-session-registry'
import type { NitySessionClosedEvent, NitySessionRegistryStats } from 'nity-session-registry'
import { FakeSession, flush, stale } from './helpers/sessions'

type Registry = NitySessionRegistry<FakeSession>

type Settled<T> = { status: 'fulfilled'; value: T } | { status: 'rejected'; reason: unknown }

/** Waits for `promise` and reports how it settled, never rejecting. */
async function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  try {
    return { status: 'fulfilled', value: await promise }
  } catch (reason) {
    return { status: 'rejected', reason }
  }
}

/** Follows a promise without awaiting it; handles its rejection. */
function track<T>(promise: Promise<T>): { readonly result: Settled<T> | undefined } {
  const state: { result: Settled<T> | undefined } = { result: undefined }
  promise.then(
    (value) => {
      state.result = { status: 'fulfilled', value }
    },
    (reason: unknown) => {
      state.result = { status: 'rejected', reason }
    },
  )
  return state
}

function stats(total: number, byClient: Record<string, number>): NitySessionRegistryStats {
  return { totalSessions: total, activeClients: Object.keys(byClient).length, sessionsByClient: byClient }
}

/** A registry whose close events are collected in `events`. */
function setup(): { registry: Registry; events: NitySessionClosedEvent[] } {
  const events: NitySessionClosedEvent[] = []
  const registry = new NitySessionRegistry<FakeSession>({ onSessionClosed: (event) => events.push(event) })
  return { registry, events }
}

/** A session whose `close()` is a plain method recording the `this` it was called with. */
class ThisProbe extends FakeSession {
  seenThis: unknown[] = []
  registeredDuringClose: boolean | undefined
  constructor(
    id: string,
    private readonly registry: Registry,
  ) {
    super(id)
  }
  override close(): void {
    this.closeCalls += 1
    this.seenThis.push(this)
    this.registeredDuringClose = this.registry.getSession(this.id) !== undefined
  }
}

const NON_ERROR_VALUES: Array<[string, unknown]> = [
  ['a string', 'close failed'],
  ['undefined', undefined],
  ['null', null],
  ['a number', 42],
  ['a plain object', { reason: 'nope' }],
  ['a symbol', Symbol('close')],
]

describe('unregister with a failing close()', () => {
  it('calls close() as a method of the handle, after removing the session', async () => {
    const registry: Registry = new NitySessionRegistry<FakeSession>()
    const handle = new ThisProbe('a', registry)
    registry.register('c', handle)
    await registry.unregister('a')
    expect(handle.closeCalls).toBe(1)
    expect(handle.seenThis).toEqual([handle])
    expect(handle.seenThis[0]).toBe(handle)
    expect(handle.registeredDuringClose).toBe(false)
  })

  it('a close() that throws synchronously: unregister does not throw, removes the session and rejects with the exact error', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const error = new Error('sync boom')
    const a = new FakeSession('a', { kind: 'throw', error })
    registry.register('c', a)
    registry.register('c', new FakeSession('b'))
    let promise: Promise<void> | undefined
    expect(() => {
      promise = registry.unregister('a')
    }).not.toThrow()
    expect(promise).toBeInstanceOf(Promise)
    expect(registry.getSession('a')).toBeUndefined()
    expect(registry.getStats()).toEqual(stats(1, { c: 1 }))
    const result = await settle(promise as Promise<void>)
    expect(result).toEqual({ status: 'rejected', reason: error })
    expect(result.status === 'rejected' && result.reason).toBe(error)
    expect(a.closeCalls).toBe(1)
  })

  it('a close() that rejects: the session is removed before close() is called and unregister rejects with the exact reason', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const error = new Error('async boom')
    const seen: Array<{ registered: boolean; stats: NitySessionRegistryStats }> = []
    const a = new FakeSession('a', {
      kind: 'custom',
      run: () => {
        seen.push({ registered: registry.getSession('a') !== undefined, stats: registry.getStats() })
        return Promise.reject(error)
      },
    })
    registry.register('c', a)
    const promise = registry.unregister('a')
    expect(registry.getSession('a')).toBeUndefined()
    const result = await settle(promise)
    expect(result.status).toBe('rejected')
    expect(result.status === 'rejected' && result.reason).toBe(error)
    expect(seen).toEqual([{ registered: false, stats: stats(0, {}) }])
    expect(registry.getStats()).toEqual(stats(0, {}))
  })

  it('a close() that never settles: the session is removed at once and the stats are exact', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a', { kind: 'never' })
    registry.register('c', a)
    registry.register('c', new FakeSession('b'))
    registry.register('d', new FakeSession('x'))
    const pending = track(registry.unregister('a'))
    expect(registry.getSession('a')).toBeUndefined()
    expect(registry.getClientSessions('c').map((s) => s.id)).toEqual(['b'])
    expect(registry.getStats()).toEqual(stats(2, { c: 1, d: 1 }))
    await flush()
    expect(pending.result).toBeUndefined()
    expect(a.closeCalls).toBe(1)
    // The registry keeps working.
    registry.register('c', new FakeSession('a2'))
    expect(registry.getStats()).toEqual(stats(3, { c: 2, d: 1 }))
  })

  it('a cleanupClient whose close() never settles still removes every session at once', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a', { kind: 'never' })
    const b = new FakeSession('b')
    registry.register('c', a)
    registry.register('c', b)
    registry.register('d', new FakeSession('x'))
    void registry.cleanupClient('c')
    expect(registry.getSession('a')).toBeUndefined()
    expect(registry.getSession('b')).toBeUndefined()
    expect(registry.getClientSessions('c')).toEqual([])
    expect(registry.getStats()).toEqual(stats(1, { d: 1 }))
    await flush()
    expect([a.closeCalls, b.closeCalls]).toEqual([1, 1])
  })

  it.each<[string, unknown]>([
    ['a number', 42],
    ['a string', 'closed'],
    ['null', null],
    ['an object without then', { closed: true }],
    ['an object whose then is not a function', { then: 'later' }],
    ['false', false],
  ])('a close() that returns %s (not a promise) resolves and removes the session', async (_name, value) => {
    const { registry, events } = setup()
    const a = new FakeSession('a', { kind: 'custom', run: () => value })
    registry.register('c', a)
    await expect(registry.unregister('a')).resolves.toBeUndefined()
    expect(registry.getSession('a')).toBeUndefined()
    expect(registry.getStats()).toEqual(stats(0, {}))
    expect(events).toHaveLength(1)
    expect('error' in events[0]).toBe(false)
  })

  it('a close() returning a thenable whose then throws: removed, and unregister rejects with the thrown value', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const error = new Error('then threw')
    const a = new FakeSession('a', {
      kind: 'custom',
      run: () => ({
        then() {
          throw error
        },
      }),
    })
    registry.register('c', a)
    const promise = registry.unregister('a')
    expect(registry.getSession('a')).toBeUndefined()
    expect(registry.getStats()).toEqual(stats(0, {}))
    const result = await settle(promise)
    expect(result.status === 'rejected' && result.reason).toBe(error)
  })

  it('a close() returning an object whose then getter throws: removed, and unregister rejects with the thrown value', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const error = new Error('then getter threw')
    const a = new FakeSession('a', {
      kind: 'custom',
      run: () => ({
        get then(): unknown {
          throw error
        },
      }),
    })
    registry.register('c', a)
    const result = await settle(registry.unregister('a'))
    expect(result.status === 'rejected' && result.reason).toBe(error)
    expect(registry.getSession('a')).toBeUndefined()
    expect(registry.getStats()).toEqual(stats(0, {}))
  })

  it('a close getter that throws: removed, and unregister rejects with the thrown value', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const error = new Error('close getter threw')
    const a = new FakeSession('a')
    registry.register('c', a)
    registry.register('c', new FakeSession('b'))
    Object.defineProperty(a, 'close', {
      configurable: true,
      get(): unknown {
        throw error
      },
    })
    const promise = settle(registry.unregister('a'))
    expect(registry.getSession('a')).toBeUndefined()
    expect(registry.getStats()).toEqual(stats(1, { c: 1 }))
    const result = await promise
    expect(result.status === 'rejected' && result.reason).toBe(error)
  })

  it('a close method replaced by a non-function after registration: the session is removed all the same', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a')
    registry.register('c', a)
    registry.register('c', new FakeSession('b'))
    Object.defineProperty(a, 'close', { value: 'not a function', configurable: true })
    const promise = settle(registry.unregister('a'))
    expect(registry.getSession('a')).toBeUndefined()
    expect(registry.getStats()).toEqual(stats(1, { c: 1 }))
    await promise
  })
})

describe('non-Error throw values pass through unchanged', () => {
  it.each(NON_ERROR_VALUES)('thrown synchronously: %s', async (_name, value) => {
    const { registry, events } = setup()
    registry.register('c', new FakeSession('a', { kind: 'throw', error: value }))
    const result = await settle(registry.unregister('a'))
    expect(result.status).toBe('rejected')
    expect(Object.is(result.status === 'rejected' ? result.reason : 'fulfilled!', value)).toBe(true)
    expect(events).toHaveLength(1)
    expect('error' in events[0]).toBe(true)
    expect(Object.is(events[0].error, value)).toBe(true)
  })

  it.each(NON_ERROR_VALUES)('rejected: %s', async (_name, value) => {
    const { registry, events } = setup()
    registry.register('c', new FakeSession('a', { kind: 'reject', error: value }))
    const result = await settle(registry.unregister('a'))
    expect(result.status).toBe('rejected')
    expect(Object.is(result.status === 'rejected' ? result.reason : 'fulfilled!', value)).toBe(true)
    expect(events).toHaveLength(1)
    expect('error' in events[0]).toBe(true)
    expect(Object.is(events[0].error, value)).toBe(true)
  })

  it.each(NON_ERROR_VALUES)('reported by cleanupClient: %s', async (_name, value) => {
    const { registry, events } = setup()
    registry.register('c', new FakeSession('a', { kind: 'reject', error: value }))
    await expect(registry.cleanupClient('c')).resolves.toBe(1)
    expect(events).toHaveLength(1)
    expect('error' in events[0]).toBe(true)
    expect(Object.is(events[0].error, value)).toBe(true)
  })
})

describe('bulk cleanups go on past failing closes', () => {
  function failing(
    registry: Registry,
    clientId: string,
    prefix: string,
  ): { errors: Map<string, unknown>; sessions: FakeSession[] } {
    const errors = new Map<string, unknown>([
      [`${prefix}-throw`, new Error('sync')],
      [`${prefix}-reject`, new Error('async')],
      [`${prefix}-then`, new TypeError('then')],
      [`${prefix}-string`, 'plain string'],
    ])
    const sessions = [
      new FakeSession(`${prefix}-ok`),
      new FakeSession(`${prefix}-throw`, { kind: 'throw', error: errors.get(`${prefix}-throw`) }),
      new FakeSession(`${prefix}-reject`, { kind: 'reject', error: errors.get(`${prefix}-reject`) }),
      new FakeSession(`${prefix}-then`, {
        kind: 'custom',
        run: () => ({
          then() {
            throw errors.get(`${prefix}-then`)
          },
        }),
      }),
      new FakeSession(`${prefix}-string`, { kind: 'throw', error: errors.get(`${prefix}-string`) }),
      new FakeSession(`${prefix}-sync`, { kind: 'sync' }),
    ]
    for (const session of sessions) registry.register(clientId, session)
    return { errors, sessions }
  }

  it('cleanupClient closes every session, resolves with the count and reports each failure with its error', async () => {
    const { registry, events } = setup()
    const { errors, sessions } = failing(registry, 'c', 's')
    registry.register('other', new FakeSession('keep'))
    await expect(registry.cleanupClient('c')).resolves.toBe(sessions.length)
    expect(sessions.map((s) => s.closeCalls)).toEqual(sessions.map(() => 1))
    expect(registry.getStats()).toEqual(stats(1, { other: 1 }))
    expect(events.map((e) => e.sessionId).sort()).toEqual(sessions.map((s) => s.id).sort())
    for (const event of events) {
      expect(event.reason).toBe('cleanupClient')
      expect(event.clientId).toBe('c')
      if (errors.has(event.sessionId)) {
        expect('error' in event).toBe(true)
        expect(event.error).toBe(errors.get(event.sessionId))
      } else {
        expect('error' in event).toBe(false)
      }
    }
  })

  it('cleanupStale closes every stale session, resolves with the count and reports each failure with its error', async () => {
    const { registry, events } = setup()
    const { errors, sessions } = failing(registry, 'c', 's')
    sessions.forEach((s, i) => stale(s, i % 2 === 0 ? 'timedOut' : 'error'))
    const healthy = new FakeSession('healthy', { kind: 'throw', error: new Error('must not be closed') })
    registry.register('c', healthy)
    await expect(registry.cleanupStale()).resolves.toBe(sessions.length)
    expect(sessions.map((s) => s.closeCalls)).toEqual(sessions.map(() => 1))
    expect(healthy.closeCalls).toBe(0)
    expect(registry.getStats()).toEqual(stats(1, { c: 1 }))
    expect(events.map((e) => e.sessionId).sort()).toEqual(sessions.map((s) => s.id).sort())
    for (const event of events) {
      expect(event.reason).toBe('cleanupStale')
      if (errors.has(event.sessionId)) {
        expect('error' in event).toBe(true)
        expect(event.error).toBe(errors.get(event.sessionId))
      } else {
        expect('error' in event).toBe(false)
      }
    }
  })

  it('cleanupStale closes sessions whose getHealth() throws or returns a non-object, and leaves one without getHealth alone', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const throws = new FakeSession('throws')
    throws.healthError = new Error('health exploded')
    const throwsString = new FakeSession('throws-string')
    throwsString.healthError = 'health exploded'
    const nonObjects = [null, undefined, 42, 'error', true].map((value, i) => {
      const session = new FakeSession(`non-object-${i}`)
      Object.defineProperty(session, 'getHealth', { value: () => value })
      return session
    })
    const noHealth = new FakeSession('no-health')
    stale(noHealth, 'error')
    Object.defineProperty(noHealth, 'getHealth', { value: undefined })
    const fine = new FakeSession('fine')
    const doomed = [throws, throwsString, ...nonObjects]
    for (const session of [...doomed, noHealth, fine]) registry.register('c', session)
    await expect(registry.cleanupStale()).resolves.toBe(doomed.length)
    expect(doomed.map((s) => s.closeCalls)).toEqual(doomed.map(() => 1))
    expect(noHealth.closeCalls).toBe(0)
    expect(fine.closeCalls).toBe(0)
    expect(registry.getClientSessions('c')).toEqual([noHealth, fine])
    expect(registry.getStats()).toEqual(stats(2, { c: 2 }))
  })

  it('cleanupStale treats a getHealth getter that throws like a getHealth() that throws, and carries on', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const throwingGetter = new FakeSession('getter')
    Object.defineProperty(throwingGetter, 'getHealth', {
      get(): unknown {
        throw new Error('getHealth getter threw')
      },
    })
    const staleToo = stale(new FakeSession('stale-too'), 'error')
    const fine = new FakeSession('fine')
    registry.register('c', fine)
    registry.register('c', throwingGetter)
    registry.register('c', staleToo)
    let promise: Promise<number> | undefined
    expect(() => {
      promise = registry.cleanupStale()
    }).not.toThrow()
    await expect(promise).resolves.toBe(2)
    expect([throwingGetter.closeCalls, staleToo.closeCalls, fine.closeCalls]).toEqual([1, 1, 0])
    expect(registry.getStats()).toEqual(stats(1, { c: 1 }))
  })

  it('cleanupStale carries on past a health report whose state getter throws', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const odd = new FakeSession('odd')
    Object.defineProperty(odd, 'getHealth', {
      value: () => ({
        get state(): string {
          throw new Error('state getter threw')
        },
        isTimedOut: false,
      }),
    })
    const staleToo = stale(new FakeSession('stale-too'), 'timedOut')
    registry.register('c', odd)
    registry.register('c', staleToo)
    let promise: Promise<number> | undefined
    expect(() => {
      promise = registry.cleanupStale()
    }).not.toThrow()
    const result = await settle(promise as Promise<number>)
    expect(result.status).toBe('fulfilled')
    expect(staleToo.closeCalls).toBe(1)
    expect(registry.getSession('stale-too')).toBeUndefined()
  })

  it('leaves no unhandled rejection behind when closes fail in bulk', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => {
      unhandled.push(reason)
    }
    process.on('unhandledRejection', onUnhandled)
    try {
      const registry = new NitySessionRegistry<FakeSession>()
      failing(registry, 'c', 'c').sessions.forEach((s) => stale(s, 'error'))
      failing(registry, 'd', 'd')
      await expect(registry.cleanupStale()).resolves.toBe(6)
      await expect(registry.cleanupClient('d')).resolves.toBe(6)
      await flush()
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})

describe('close() calling back into the registry', () => {
  it('registers a new session for another client: it stays and the counts are exact', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const fresh = new FakeSession('fresh')
    registry.register('c', new FakeSession('a', { kind: 'custom', run: () => registry.register('d', fresh) }))
    registry.register('c', new FakeSession('b'))
    await registry.unregister('a')
    expect(registry.getSession('fresh')).toBe(fresh)
    expect(registry.getStats()).toEqual(stats(2, { c: 1, d: 1 }))
  })

  it.each(['unregister', 'cleanupClient', 'cleanupStale'] as const)(
    're-registers a new session under the same client during %s: the new session remains registered',
    async (how) => {
      const registry = new NitySessionRegistry<FakeSession>()
      const replacement = new FakeSession('a-2')
      const sameId = new FakeSession('b')
      const a = stale(
        new FakeSession('a', {
          kind: 'custom',
          run: () => {
            registry.register('c', replacement)
            return Promise.resolve()
          },
        }),
        'error',
      )
      const b = stale(
        new FakeSession('b', {
          kind: 'custom',
          run: () => {
            registry.register('c', sameId)
          },
        }),
        'timedOut',
      )
      registry.register('c', a)
      registry.register('c', b)
      if (how === 'unregister') {
        await Promise.all([registry.unregister('a'), registry.unregister('b')])
      } else if (how === 'cleanupClient') {
        await expect(registry.cleanupClient('c')).resolves.toBe(2)
      } else {
        await expect(registry.cleanupStale()).resolves.toBe(2)
      }
      expect([a.closeCalls, b.closeCalls]).toEqual([1, 1])
      expect(registry.getSession('a-2')).toBe(replacement)
      expect(registry.getSession('b')).toBe(sameId)
      expect(registry.getClientSessions('c')).toEqual([replacement, sameId])
      expect(registry.getStats()).toEqual(stats(2, { c: 2 }))
      expect([replacement.closeCalls, sameId.closeCalls]).toEqual([0, 0])
    },
  )

  it('unregisters another session: that one is closed exactly once and both are removed', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const other = new FakeSession('other')
    let inner: Promise<void> | undefined
    const a = new FakeSession('a', {
      kind: 'custom',
      run: () => {
        inner = registry.unregister('other')
      },
    })
    registry.register('c', a)
    registry.register('d', other)
    registry.register('d', new FakeSession('keep'))
    await registry.unregister('a')
    await inner
    expect([a.closeCalls, other.closeCalls]).toEqual([1, 1])
    expect(registry.getSession('other')).toBeUndefined()
    expect(registry.getStats()).toEqual(stats(1, { d: 1 }))
  })

  it('unregisters itself: close() is called once and both calls resolve', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    let inner: Promise<void> | undefined
    const a = new FakeSession('a', {
      kind: 'custom',
      run: () => {
        inner = registry.unregister('a')
        return Promise.resolve()
      },
    })
    registry.register('c', a)
    registry.register('c', new FakeSession('b'))
    await expect(registry.unregister('a')).resolves.toBeUndefined()
    await expect(inner).resolves.toBeUndefined()
    expect(a.closeCalls).toBe(1)
    expect(registry.getStats()).toEqual(stats(1, { c: 1 }))
  })

  it('unregisters itself and then throws: close() is called once, the outer call rejects and the inner one resolves', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const error = new Error('after self-unregister')
    let inner: Promise<void> | undefined
    const a = new FakeSession('a', {
      kind: 'custom',
      run: () => {
        inner = registry.unregister('a')
        throw error
      },
    })
    registry.register('c', a)
    const outer = await settle(registry.unregister('a'))
    expect(outer.status === 'rejected' && outer.reason).toBe(error)
    await expect(inner).resolves.toBeUndefined()
    expect(a.closeCalls).toBe(1)
    expect(registry.getStats()).toEqual(stats(0, {}))
  })

  it('calls getStats: the closing session is already gone from the counts', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const seen: NitySessionRegistryStats[] = []
    registry.register(
      'c',
      new FakeSession('a', {
        kind: 'custom',
        run: () => {
          seen.push(registry.getStats())
        },
      }),
    )
    registry.register('c', new FakeSession('b'))
    registry.register('d', new FakeSession('x'))
    await registry.unregister('a')
    expect(seen).toEqual([stats(2, { c: 1, d: 1 })])
    await registry.cleanupClient('c')
    expect(registry.getStats()).toEqual(stats(1, { d: 1 }))
  })

  it('calls cleanupClient for its own client: the siblings are closed exactly once and the counts are exact', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    let inner: Promise<number> | undefined
    const a = new FakeSession('a', {
      kind: 'custom',
      run: () => {
        inner = registry.cleanupClient('c')
        return Promise.reject(new Error('closing a failed'))
      },
    })
    const siblings = [new FakeSession('b'), new FakeSession('c2', { kind: 'throw', error: 'x' })]
    registry.register('c', a)
    for (const s of siblings) registry.register('c', s)
    registry.register('d', new FakeSession('x'))
    const outer = await settle(registry.unregister('a'))
    expect(outer.status).toBe('rejected')
    await expect(inner).resolves.toBe(2)
    expect([a.closeCalls, ...siblings.map((s) => s.closeCalls)]).toEqual([1, 1, 1])
    expect(registry.getStats()).toEqual(stats(1, { d: 1 }))
  })

  it('calls cleanupClient again from inside a cleanupClient: nothing is closed twice', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    let inner: Promise<number> | undefined
    const a = new FakeSession('a', {
      kind: 'custom',
      run: () => {
        inner = registry.cleanupClient('c')
      },
    })
    const b = new FakeSession('b')
    registry.register('c', a)
    registry.register('c', b)
    await expect(registry.cleanupClient('c')).resolves.toBe(2)
    await expect(inner).resolves.toBe(0)
    expect([a.closeCalls, b.closeCalls]).toEqual([1, 1])
    expect(registry.getStats()).toEqual(stats(0, {}))
  })

  it('unregisters a sibling of the same cleanupClient before its turn: the sibling is closed exactly once', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    let inner: Promise<void> | undefined
    const a = new FakeSession('a', {
      kind: 'custom',
      run: () => {
        inner = registry.unregister('b')
      },
    })
    const b = new FakeSession('b', { kind: 'manual' })
    registry.register('c', a)
    registry.register('c', b)
    const cleanup = track(registry.cleanupClient('c'))
    const innerState = track(inner as unknown as Promise<void>)
    await flush()
    expect(b.closeCalls).toBe(1)
    expect(cleanup.result).toBeUndefined()
    expect(innerState.result).toBeUndefined()
    b.settle?.resolve()
    await flush()
    expect(cleanup.result).toEqual({ status: 'fulfilled', value: 2 })
    expect(innerState.result).toEqual({ status: 'fulfilled', value: undefined })
    expect([a.closeCalls, b.closeCalls]).toEqual([1, 1])
    expect(registry.getStats()).toEqual(stats(0, {}))
  })
})

describe('races close each session exactly once', () => {
  it('two unregister calls on one session call close() once', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a')
    registry.register('c', a)
    await Promise.all([registry.unregister('a'), registry.unregister('a')])
    expect(a.closeCalls).toBe(1)
    expect(registry.getStats()).toEqual(stats(0, {}))
  })

  it('a second unregister resolves only once the close in flight settles', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a', { kind: 'manual' })
    registry.register('c', a)
    const order: string[] = []
    const first = registry.unregister('a').then(() => order.push('first'))
    const second = registry.unregister('a').then(() => order.push('second'))
    await flush()
    expect(order).toEqual([])
    expect(a.closeCalls).toBe(1)
    order.push('settle')
    a.settle?.resolve()
    await Promise.all([first, second])
    expect(order[0]).toBe('settle')
    expect(order.slice(1).sort()).toEqual(['first', 'second'])
    expect(a.closeCalls).toBe(1)
  })

  it('a second unregister resolves (not rejects) when the first rejects', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a', { kind: 'manual' })
    const error = new Error('late failure')
    registry.register('c', a)
    const first = track(registry.unregister('a'))
    const second = track(registry.unregister('a'))
    await flush()
    expect(first.result).toBeUndefined()
    expect(second.result).toBeUndefined()
    a.settle?.reject(error)
    await flush()
    expect(first.result).toEqual({ status: 'rejected', reason: error })
    expect(second.result).toEqual({ status: 'fulfilled', value: undefined })
    expect(a.closeCalls).toBe(1)
  })

  it('cleanupClient during an in-flight unregister does not close the session again', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a', { kind: 'manual' })
    const b = new FakeSession('b')
    registry.register('c', a)
    registry.register('c', b)
    const first = track(registry.unregister('a'))
    await expect(registry.cleanupClient('c')).resolves.toBe(1)
    expect([a.closeCalls, b.closeCalls]).toEqual([1, 1])
    expect(registry.getStats()).toEqual(stats(0, {}))
    a.settle?.resolve()
    await flush()
    expect(first.result).toEqual({ status: 'fulfilled', value: undefined })
    expect(a.closeCalls).toBe(1)
  })

  it('cleanupStale during an in-flight unregister does not close the session again', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = stale(new FakeSession('a', { kind: 'manual' }), 'error')
    const b = stale(new FakeSession('b'), 'timedOut')
    registry.register('c', a)
    registry.register('c', b)
    const first = track(registry.unregister('a'))
    await expect(registry.cleanupStale()).resolves.toBe(1)
    expect([a.closeCalls, b.closeCalls]).toEqual([1, 1])
    a.settle?.resolve()
    await flush()
    expect(first.result).toEqual({ status: 'fulfilled', value: undefined })
    expect(a.closeCalls).toBe(1)
    expect(registry.getStats()).toEqual(stats(0, {}))
  })

  it('unregister during an in-flight cleanupStale closes nothing twice and waits for that close', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = stale(new FakeSession('a', { kind: 'manual' }), 'error')
    registry.register('c', a)
    const cleanup = track(registry.cleanupStale())
    const second = track(registry.unregister('a'))
    const third = track(registry.cleanupClient('c'))
    await flush()
    expect(a.closeCalls).toBe(1)
    expect(cleanup.result).toBeUndefined()
    expect(second.result).toBeUndefined()
    expect(third.result).toEqual({ status: 'fulfilled', value: 0 })
    a.settle?.reject(new Error('stale close failed'))
    await flush()
    expect(cleanup.result).toEqual({ status: 'fulfilled', value: 1 })
    expect(second.result).toEqual({ status: 'fulfilled', value: undefined })
    expect(a.closeCalls).toBe(1)
  })

  it('unregister and cleanupStale during an in-flight cleanupClient close nothing twice', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = stale(new FakeSession('a', { kind: 'manual' }), 'timedOut')
    const b = stale(new FakeSession('b', { kind: 'manual' }), 'error')
    registry.register('c', a)
    registry.register('c', b)
    const cleanup = track(registry.cleanupClient('c'))
    const unregisterA = track(registry.unregister('a'))
    await expect(registry.cleanupStale()).resolves.toBe(0)
    await flush()
    expect([a.closeCalls, b.closeCalls]).toEqual([1, 1])
    expect(unregisterA.result).toBeUndefined()
    a.settle?.resolve()
    await flush()
    expect(unregisterA.result).toEqual({ status: 'fulfilled', value: undefined })
    expect(cleanup.result).toBeUndefined()
    b.settle?.resolve()
    await flush()
    expect(cleanup.result).toEqual({ status: 'fulfilled', value: 2 })
    expect([a.closeCalls, b.closeCalls]).toEqual([1, 1])
  })

  it('two concurrent cleanupStale calls close each stale session once', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const sessions = ['a', 'b', 'c'].map((id) => stale(new FakeSession(id, { kind: 'manual' }), 'error'))
    for (const s of sessions) registry.register('c', s)
    const first = track(registry.cleanupStale())
    const second = track(registry.cleanupStale())
    await flush()
    expect(second.result).toEqual({ status: 'fulfilled', value: 0 })
    for (const s of sessions) s.settle?.resolve()
    await flush()
    expect(first.result).toEqual({ status: 'fulfilled', value: 3 })
    expect(sessions.map((s) => s.closeCalls)).toEqual([1, 1, 1])
  })

  it.each(['before', 'after'] as const)(
    'a getHealth() that unregisters a stale session scanned %s it: that session is closed exactly once and counts stay exact',
    async (where) => {
      const { registry, events } = setup()
      const victim = stale(new FakeSession('victim'), 'error')
      let inner: Promise<void> | undefined
      const meddler = new FakeSession('meddler')
      Object.defineProperty(meddler, 'getHealth', {
        value: () => {
          inner ??= registry.unregister('victim')
          return meddler.health
        },
      })
      if (where === 'before') {
        registry.register('c', victim)
        registry.register('d', meddler)
      } else {
        registry.register('d', meddler)
        registry.register('c', victim)
      }
      registry.register('c', new FakeSession('keep'))
      const removed = await registry.cleanupStale()
      await inner
      expect(victim.closeCalls).toBe(1)
      expect(meddler.closeCalls).toBe(0)
      expect(removed).toBe(0)
      expect(events.map((e) => [e.sessionId, e.reason])).toEqual([['victim', 'unregister']])
      expect(registry.getSession('victim')).toBeUndefined()
      expect(registry.getStats()).toEqual(stats(2, { c: 1, d: 1 }))
    },
  )

  it('a getHealth() that unregisters its own stale session: closed exactly once', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    let inner: Promise<void> | undefined
    const self = stale(new FakeSession('self'), 'error')
    Object.defineProperty(self, 'getHealth', {
      value: () => {
        inner ??= registry.unregister('self')
        return self.health
      },
    })
    registry.register('c', self)
    registry.register('c', new FakeSession('keep'))
    await expect(registry.cleanupStale()).resolves.toBe(0)
    await inner
    expect(self.closeCalls).toBe(1)
    expect(registry.getStats()).toEqual(stats(1, { c: 1 }))
  })
})

describe('misbehaving thenables are reported exactly once', () => {
  const error = new Error('thenable rejection')
  const cases: Array<[string, (onFulfilled: () => void, onRejected: (e: unknown) => void) => void]> = [
    ['fulfils then rejects', (ok, fail) => (ok(), fail(error))],
    ['rejects then fulfils', (ok, fail) => (fail(error), ok())],
    ['fulfils twice', (ok) => (ok(), ok())],
    ['rejects twice', (_ok, fail) => (fail(error), fail(error))],
    ['fulfils twice later', (ok) => queueMicrotask(() => (ok(), ok()))],
    ['rejects then fulfils later', (ok, fail) => queueMicrotask(() => (fail(error), ok()))],
    [
      'fulfils and then throws',
      (ok) => (
        ok(),
        (() => {
          throw error
        })()
      ),
    ],
  ]

  it.each(cases)('a thenable that %s, closed by unregister', async (_name, then) => {
    const { registry, events } = setup()
    const a = new FakeSession('a', { kind: 'custom', run: () => ({ then }) })
    registry.register('c', a)
    await settle(registry.unregister('a'))
    await flush()
    expect(events).toHaveLength(1)
    expect(events[0].sessionId).toBe('a')
    expect(a.closeCalls).toBe(1)
    expect(registry.getStats()).toEqual(stats(0, {}))
  })

  it.each(cases)('a thenable that %s, closed by cleanupClient', async (_name, then) => {
    const { registry, events } = setup()
    const a = new FakeSession('a', { kind: 'custom', run: () => ({ then }) })
    const b = new FakeSession('b', { kind: 'custom', run: () => ({ then }) })
    registry.register('c', a)
    registry.register('c', b)
    await expect(registry.cleanupClient('c')).resolves.toBe(2)
    await flush()
    expect(events.map((e) => e.sessionId).sort()).toEqual(['a', 'b'])
  })
})
