import { describe, expect, it } from 'vitest'
import { NitySessionRegistry } from 'nity-session-registry'
import type { NitySessionClosedEvent, NitySessionRegistryStats } from 'nity-session-registry'
import { FakeSession, flush, stale } from './helpers/sessions'

type Listener = (event: NitySessionClosedEvent) => void

function stats(total: number, byClient: Record<string, number>): NitySessionRegistryStats {
  return { totalSessions: total, activeClients: Object.keys(byClient).length, sessionsByClient: byClient }
}

/** Follows a promise without awaiting it; handles its rejection. */
function track<T>(promise: Promise<T>): { readonly done: boolean; readonly rejected: boolean } {
  const state = { done: false, rejected: false }
  promise.then(
    () => {
      state.done = true
    },
    () => {
      state.done = true
      state.rejected = true
    },
  )
  return state
}

/** Runs `fn` while collecting the registry's process warnings, letting them arrive before returning. */
/**
 * Runs `fn` while collecting process warnings, lets them arrive, and returns
 * those whose `cause` is one of `causes` (so a warning left over from another
 * test cannot interfere).
 */
async function withWarnings<T>(causes: unknown[], fn: () => Promise<T>): Promise<{ result: T; warnings: Error[] }> {
  const all: Error[] = []
  const onWarning = (warning: Error) => {
    all.push(warning)
  }
  process.on('warning', onWarning)
  try {
    const result = await fn()
    await flush()
    return { result, warnings: all.filter((w) => causes.some((cause) => Object.is(cause, w.cause))) }
  } finally {
    process.off('warning', onWarning)
  }
}

function busyWait(ms: number): void {
  const start = performance.now()
  while (performance.now() - start < ms) {
    // Spin: real time passes without depending on the scheduler.
  }
}

describe('close event contents', () => {
  it('reports a clean unregister as { sessionId, clientId, reason, durationMs } without error', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: NitySessionClosedEvent[] = []
    const unsubscribe = registry.onSessionClosed((event) => events.push(event))
    expect(typeof unsubscribe).toBe('function')
    registry.register('client-1', new FakeSession('s-1'))
    await registry.unregister('s-1')
    expect(events).toHaveLength(1)
    const [event] = events
    expect(Object.keys(event).sort()).toEqual(['clientId', 'durationMs', 'reason', 'sessionId'])
    expect(event).toMatchObject({ sessionId: 's-1', clientId: 'client-1', reason: 'unregister' })
    expect('error' in event).toBe(false)
    expect(typeof event.durationMs).toBe('number')
    expect(Number.isFinite(event.durationMs)).toBe(true)
    expect(event.durationMs).toBeGreaterThanOrEqual(0)
  })

  it('names the call that closed the session: unregister, cleanupClient, cleanupStale', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: NitySessionClosedEvent[] = []
    registry.onSessionClosed((event) => events.push(event))
    registry.register('u', new FakeSession('by-unregister'))
    registry.register('k', new FakeSession('by-cleanup-1'))
    registry.register('k', new FakeSession('by-cleanup-2', { kind: 'sync' }))
    registry.register('s', stale(new FakeSession('by-stale-1'), 'timedOut'))
    registry.register('s', stale(new FakeSession('by-stale-2'), 'error'))
    registry.register('s', new FakeSession('healthy'))
    await registry.unregister('by-unregister')
    await registry.cleanupClient('k')
    await registry.cleanupStale()
    const summary = events.map((e) => [e.sessionId, e.clientId, e.reason]).sort()
    expect(summary).toEqual([
      ['by-cleanup-1', 'k', 'cleanupClient'],
      ['by-cleanup-2', 'k', 'cleanupClient'],
      ['by-stale-1', 's', 'cleanupStale'],
      ['by-stale-2', 's', 'cleanupStale'],
      ['by-unregister', 'u', 'unregister'],
    ])
    expect(events.every((e) => !('error' in e))).toBe(true)
  })

  it('carries the exact error, identity preserved, only when close() threw or rejected', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: NitySessionClosedEvent[] = []
    registry.onSessionClosed((event) => events.push(event))
    const thrown = new Error('thrown')
    const rejected = { code: 'E_CUSTOM' }
    registry.register('c', new FakeSession('throws', { kind: 'throw', error: thrown }))
    registry.register('c', new FakeSession('rejects', { kind: 'reject', error: rejected }))
    registry.register('c', new FakeSession('resolves'))
    registry.register('c', new FakeSession('sync', { kind: 'sync' }))
    await expect(registry.cleanupClient('c')).resolves.toBe(4)
    const byId = new Map(events.map((e) => [e.sessionId, e]))
    expect(byId.size).toBe(4)
    expect(byId.get('throws')?.error).toBe(thrown)
    expect(byId.get('rejects')?.error).toBe(rejected)
    expect('error' in (byId.get('resolves') ?? {})).toBe(false)
    expect('error' in (byId.get('sync') ?? {})).toBe(false)
  })

  it('reports an error property even when close() rejected with undefined', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: NitySessionClosedEvent[] = []
    registry.onSessionClosed((event) => events.push(event))
    registry.register('c', new FakeSession('a', { kind: 'reject', error: undefined }))
    await registry.cleanupClient('c')
    expect(events).toHaveLength(1)
    expect(Object.hasOwn(events[0], 'error')).toBe(true)
    expect(events[0].error).toBeUndefined()
  })

  it('measures durationMs from calling close() to its settling', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: NitySessionClosedEvent[] = []
    registry.onSessionClosed((event) => events.push(event))
    registry.register('c', new FakeSession('slow', { kind: 'custom', run: () => busyWait(15) }))
    const before = performance.now()
    await registry.unregister('slow')
    const elapsed = performance.now() - before
    expect(events).toHaveLength(1)
    expect(events[0].durationMs).toBeGreaterThanOrEqual(14)
    expect(events[0].durationMs).toBeLessThanOrEqual(elapsed + 1)
  })

  it('measures durationMs up to the settling of an asynchronous close', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: NitySessionClosedEvent[] = []
    registry.onSessionClosed((event) => events.push(event))
    const session = new FakeSession('manual', { kind: 'manual' })
    registry.register('c', session)
    const before = performance.now()
    const promise = registry.unregister('manual')
    busyWait(15)
    session.settle?.resolve()
    await promise
    const elapsed = performance.now() - before
    expect(events).toHaveLength(1)
    expect(events[0].durationMs).toBeGreaterThanOrEqual(14)
    expect(events[0].durationMs).toBeLessThanOrEqual(elapsed + 1)
  })
})

describe('when close events are delivered', () => {
  it('only once close() has settled, and before the unregister promise resolves', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const order: string[] = []
    registry.onSessionClosed((event) => order.push(`event:${event.sessionId}`))
    const session = new FakeSession('a', { kind: 'manual' })
    registry.register('c', session)
    const done = registry.unregister('a').then(() => order.push('resolved'))
    await flush()
    expect(order).toEqual([])
    order.push('settle')
    session.settle?.resolve()
    await done
    expect(order).toEqual(['settle', 'event:a', 'resolved'])
  })

  it('before the rejection of an unregister whose close() rejects', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const order: string[] = []
    registry.onSessionClosed((event) => order.push(`event:${event.sessionId}`))
    const session = new FakeSession('a', { kind: 'manual' })
    registry.register('c', session)
    const done = registry.unregister('a').then(
      () => order.push('resolved'),
      () => order.push('rejected'),
    )
    await flush()
    expect(order).toEqual([])
    session.settle?.reject(new Error('late'))
    await done
    expect(order).toEqual(['event:a', 'rejected'])
  })

  it('right away for a synchronously settled close, before unregister() returns', () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: NitySessionClosedEvent[] = []
    registry.onSessionClosed((event) => events.push(event))
    registry.register('c', new FakeSession('sync', { kind: 'sync' }))
    registry.register('c', new FakeSession('throws', { kind: 'throw', error: 'boom' }))
    void registry.unregister('sync')
    expect(events.map((e) => e.sessionId)).toEqual(['sync'])
    registry.unregister('throws').catch(() => {})
    expect(events.map((e) => e.sessionId)).toEqual(['sync', 'throws'])
    expect(events[1].error).toBe('boom')
  })

  it('for every session of a cleanupClient before its promise resolves', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: string[] = []
    registry.onSessionClosed((event) => events.push(event.sessionId))
    const slow = new FakeSession('slow', { kind: 'manual' })
    registry.register('c', slow)
    registry.register('c', new FakeSession('fast'))
    registry.register('c', new FakeSession('failing', { kind: 'reject', error: new Error('x') }))
    let seenAtResolve: string[] | undefined
    const cleanup = registry.cleanupClient('c').then((count) => {
      seenAtResolve = [...events]
      return count
    })
    await flush()
    expect(seenAtResolve).toBeUndefined()
    expect(events.sort()).toEqual(['failing', 'fast'])
    slow.settle?.resolve()
    await expect(cleanup).resolves.toBe(3)
    expect(seenAtResolve?.sort()).toEqual(['failing', 'fast', 'slow'])
  })

  it('for every stale session before the cleanupStale promise resolves', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: string[] = []
    registry.onSessionClosed((event) => events.push(event.sessionId))
    const slow = stale(new FakeSession('slow', { kind: 'manual' }), 'error')
    registry.register('c', slow)
    registry.register('d', stale(new FakeSession('fast'), 'timedOut'))
    let seenAtResolve: string[] | undefined
    const cleanup = registry.cleanupStale().then((count) => {
      seenAtResolve = [...events]
      return count
    })
    await flush()
    expect(seenAtResolve).toBeUndefined()
    slow.settle?.reject('nope')
    await expect(cleanup).resolves.toBe(2)
    expect(seenAtResolve?.sort()).toEqual(['fast', 'slow'])
  })

  it('never for a close that never settles', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: NitySessionClosedEvent[] = []
    registry.onSessionClosed((event) => events.push(event))
    registry.register('c', new FakeSession('never', { kind: 'never' }))
    void registry.unregister('never')
    await flush()
    expect(events).toEqual([])
  })

  it('once per close when racing calls close the same session', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: NitySessionClosedEvent[] = []
    registry.onSessionClosed((event) => events.push(event))
    const session = stale(new FakeSession('a', { kind: 'manual' }), 'error')
    registry.register('c', session)
    const calls = [
      registry.unregister('a'),
      registry.unregister('a'),
      registry.cleanupClient('c'),
      registry.cleanupStale(),
    ]
    session.settle?.resolve()
    await Promise.all(calls)
    expect(events.map((e) => [e.sessionId, e.reason])).toEqual([['a', 'unregister']])
  })
})

describe('subscribing and unsubscribing', () => {
  it('delivers to a listener passed as the constructor option', async () => {
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({ onSessionClosed: (event) => events.push(event) })
    registry.register('c', new FakeSession('a'))
    await registry.cleanupClient('c')
    expect(events.map((e) => [e.sessionId, e.clientId, e.reason])).toEqual([['a', 'c', 'cleanupClient']])
  })

  it('delivers to the constructor option and to onSessionClosed listeners alike', async () => {
    const fromOption: string[] = []
    const fromMethod: string[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      onSessionClosed: (event) => fromOption.push(event.sessionId),
    })
    registry.onSessionClosed((event) => fromMethod.push(event.sessionId))
    registry.register('c', new FakeSession('a'))
    await registry.unregister('a')
    expect(fromOption).toEqual(['a'])
    expect(fromMethod).toEqual(['a'])
  })

  it('accepts an options object without onSessionClosed, and no options at all', async () => {
    for (const registry of [
      new NitySessionRegistry<FakeSession>({}),
      new NitySessionRegistry<FakeSession>(undefined),
    ]) {
      registry.register('c', new FakeSession('a'))
      await expect(registry.unregister('a')).resolves.toBeUndefined()
    }
  })

  it('stops delivering after unsubscribe', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: string[] = []
    const unsubscribe = registry.onSessionClosed((event) => events.push(event.sessionId))
    registry.register('c', new FakeSession('a'))
    registry.register('c', new FakeSession('b'))
    await registry.unregister('a')
    expect(unsubscribe()).toBeUndefined()
    await registry.unregister('b')
    expect(events).toEqual(['a'])
  })

  it('unsubscribing another listener leaves the constructor listener in place', async () => {
    const fromOption: string[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      onSessionClosed: (event) => fromOption.push(event.sessionId),
    })
    const unsubscribe = registry.onSessionClosed(() => {})
    unsubscribe()
    registry.register('c', new FakeSession('a'))
    await registry.unregister('a')
    expect(fromOption).toEqual(['a'])
  })

  it('calling unsubscribe twice is harmless and does not remove a listener added in between', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const first: string[] = []
    const second: string[] = []
    const third: string[] = []
    const unsubscribeFirst = registry.onSessionClosed((event) => first.push(event.sessionId))
    unsubscribeFirst()
    registry.onSessionClosed((event) => second.push(event.sessionId))
    expect(() => unsubscribeFirst()).not.toThrow()
    registry.onSessionClosed((event) => third.push(event.sessionId))
    unsubscribeFirst()
    registry.register('c', new FakeSession('a'))
    await registry.unregister('a')
    expect(first).toEqual([])
    expect(second).toEqual(['a'])
    expect(third).toEqual(['a'])
  })

  it('the same function subscribed twice is called twice and unsubscribed one subscription at a time', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const calls: string[] = []
    const listener: Listener = (event) => calls.push(event.sessionId)
    const unsubscribeOne = registry.onSessionClosed(listener)
    registry.onSessionClosed(listener)
    registry.register('c', new FakeSession('a'))
    registry.register('c', new FakeSession('b'))
    await registry.unregister('a')
    expect(calls).toEqual(['a', 'a'])
    unsubscribeOne()
    await registry.unregister('b')
    expect(calls).toEqual(['a', 'a', 'b'])
  })

  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['a string', 'listener'],
    ['an object', { handleEvent() {} }],
  ])('onSessionClosed(%s) throws a TypeError with code ERR_INVALID_LISTENER', async (_name, value) => {
    const registry = new NitySessionRegistry<FakeSession>()
    let caught: unknown
    try {
      registry.onSessionClosed(value as Listener)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(TypeError)
    expect((caught as { code?: unknown }).code).toBe('ERR_INVALID_LISTENER')
    // The registry keeps working.
    registry.register('c', new FakeSession('a'))
    await expect(registry.unregister('a')).resolves.toBeUndefined()
  })

  it.each<[string, unknown]>([
    ['a number', 42],
    ['a string', 'listener'],
    ['an object', {}],
  ])('an onSessionClosed option that is %s throws a TypeError with code ERR_INVALID_LISTENER', (_name, value) => {
    let caught: unknown
    try {
      new NitySessionRegistry({ onSessionClosed: value as Listener })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(TypeError)
    expect((caught as { code?: unknown }).code).toBe('ERR_INVALID_LISTENER')
  })
})

describe('listeners changed during delivery', () => {
  it('a listener added during delivery is called from the next event on', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const late: string[] = []
    let added = false
    registry.onSessionClosed(() => {
      if (!added) {
        added = true
        registry.onSessionClosed((event) => late.push(event.sessionId))
      }
    })
    registry.register('c', new FakeSession('a'))
    registry.register('c', new FakeSession('b'))
    await registry.unregister('a')
    expect(late).toEqual([])
    await registry.unregister('b')
    expect(late).toEqual(['b'])
  })

  it('a listener removed during delivery still gets the current event but not the next', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const victim: string[] = []
    let unsubscribeVictim: (() => void) | undefined
    registry.onSessionClosed(() => unsubscribeVictim?.())
    unsubscribeVictim = registry.onSessionClosed((event) => victim.push(event.sessionId))
    registry.register('c', new FakeSession('a'))
    registry.register('c', new FakeSession('b'))
    await registry.unregister('a')
    expect(victim).toEqual(['a'])
    await registry.unregister('b')
    expect(victim).toEqual(['a'])
  })

  it('a listener that unsubscribes itself gets the current event only', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const once: string[] = []
    const other: string[] = []
    const unsubscribe = registry.onSessionClosed((event) => {
      once.push(event.sessionId)
      unsubscribe()
    })
    registry.onSessionClosed((event) => other.push(event.sessionId))
    registry.register('c', new FakeSession('a'))
    registry.register('c', new FakeSession('b'))
    await registry.unregister('a')
    await registry.unregister('b')
    expect(once).toEqual(['a'])
    expect(other).toEqual(['a', 'b'])
  })

  it('a listener removed and another added in its place during delivery: the change applies from the next event', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const removed: string[] = []
    const replacement: string[] = []
    let swapped = false
    let unsubscribeRemoved: (() => void) | undefined
    registry.onSessionClosed(() => {
      if (swapped) return
      swapped = true
      unsubscribeRemoved?.()
      registry.onSessionClosed((event) => replacement.push(event.sessionId))
    })
    unsubscribeRemoved = registry.onSessionClosed((event) => removed.push(event.sessionId))
    registry.register('c', new FakeSession('a'))
    registry.register('c', new FakeSession('b'))
    await registry.unregister('a')
    await registry.unregister('b')
    expect(removed).toEqual(['a'])
    expect(replacement).toEqual(['b'])
  })

  it('a listener may call back into the registry', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const follower = new FakeSession('follower')
    const newcomer = new FakeSession('newcomer')
    const seen: NitySessionRegistryStats[] = []
    const inner: Array<Promise<void>> = []
    registry.onSessionClosed((event) => {
      seen.push(registry.getStats())
      if (event.sessionId === 'a') {
        inner.push(registry.unregister('follower'))
        registry.register('c', newcomer)
      }
    })
    registry.register('c', new FakeSession('a'))
    registry.register('d', follower)
    await registry.unregister('a')
    await Promise.all(inner)
    expect(follower.closeCalls).toBe(1)
    expect(seen[0]).toEqual(stats(1, { d: 1 }))
    expect(registry.getSession('newcomer')).toBe(newcomer)
    expect(registry.getStats()).toEqual(stats(1, { c: 1 }))
  })
})

describe('a listener that throws', () => {
  it.each<[string, unknown]>([
    ['an Error', new Error('listener broke')],
    ['a string', 'listener broke (string)'],
    ['an object', { broken: true }],
  ])(
    'throwing %s: other listeners still run, the call resolves, and a warning carries the thrown value',
    async (_name, thrown) => {
      const registry = new NitySessionRegistry<FakeSession>()
      const before: string[] = []
      const after: string[] = []
      registry.onSessionClosed((event) => before.push(event.sessionId))
      registry.onSessionClosed(() => {
        throw thrown
      })
      registry.onSessionClosed((event) => after.push(event.sessionId))
      registry.register('c', new FakeSession('a'))
      const { result, warnings } = await withWarnings([thrown], () => registry.unregister('a'))
      expect(result).toBeUndefined()
      expect(before).toEqual(['a'])
      expect(after).toEqual(['a'])
      expect(warnings).toHaveLength(1)
      const [warning] = warnings
      expect(warning.name).toBe('NitySessionRegistryWarning')
      expect((warning as Error & { code?: unknown }).code).toBe('ERR_CLOSE_LISTENER_FAILED')
      expect(Object.is(warning.cause, thrown)).toBe(true)
    },
  )

  it('is reported once per failing delivery, and the registry keeps working', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const delivered: string[] = []
    const failures: unknown[] = []
    const unsubscribe = registry.onSessionClosed((event) => {
      const failure = new Error(`failed on ${event.sessionId}`)
      failures.push(failure)
      throw failure
    })
    registry.onSessionClosed((event) => delivered.push(event.sessionId))
    registry.register('c', new FakeSession('a'))
    registry.register('c', new FakeSession('b', { kind: 'reject', error: new Error('close failed') }))
    registry.register('d', new FakeSession('x', { kind: 'sync' }))
    registry.register('d', stale(new FakeSession('y'), 'error'))
    const { warnings } = await withWarnings(failures, async () => {
      await registry.cleanupClient('c')
      await registry.unregister('x')
      await registry.cleanupStale()
    })
    expect(delivered.sort()).toEqual(['a', 'b', 'x', 'y'])
    expect(failures).toHaveLength(4)
    expect(warnings.map((w) => w.cause)).toEqual(failures)
    expect(warnings.every((w) => w.name === 'NitySessionRegistryWarning')).toBe(true)
    unsubscribe()
    registry.register('e', new FakeSession('z'))
    expect(registry.getStats()).toEqual(stats(1, { e: 1 }))
    await expect(registry.unregister('z')).resolves.toBeUndefined()
    expect(delivered.sort()).toEqual(['a', 'b', 'x', 'y', 'z'])
  })

  it('during a synchronously settled close does not make unregister throw or reject', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const thrown = new Error('listener broke during a sync close')
    registry.onSessionClosed(() => {
      throw thrown
    })
    registry.register('c', new FakeSession('a', { kind: 'sync' }))
    const { result, warnings } = await withWarnings([thrown], async () => {
      let promise: Promise<void> | undefined
      expect(() => {
        promise = registry.unregister('a')
      }).not.toThrow()
      return track(promise as Promise<void>)
    })
    expect(result).toEqual({ done: true, rejected: false })
    expect(warnings).toHaveLength(1)
    expect(registry.getStats()).toEqual(stats(0, {}))
  })

  it('does not change how a failing close rejects unregister', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const closeError = new Error('close failed')
    const thrown = new Error('listener broke')
    registry.onSessionClosed(() => {
      throw thrown
    })
    registry.register('c', new FakeSession('a', { kind: 'reject', error: closeError }))
    const { result, warnings } = await withWarnings([thrown], () =>
      registry.unregister('a').then(
        () => 'resolved' as unknown,
        (error: unknown) => error,
      ),
    )
    expect(result).toBe(closeError)
    expect(warnings).toHaveLength(1)
  })

  it('does not stop a cleanupClient from closing the remaining sessions', async () => {
    const thrown = new Error('constructor listener broke')
    const registry = new NitySessionRegistry<FakeSession>({
      onSessionClosed: () => {
        throw thrown
      },
    })
    const sessions = ['a', 'b', 'c'].map((id) => new FakeSession(id, { kind: 'sync' }))
    for (const s of sessions) registry.register('client', s)
    const { result, warnings } = await withWarnings([thrown], () => registry.cleanupClient('client'))
    expect(result).toBe(3)
    expect(sessions.map((s) => s.closeCalls)).toEqual([1, 1, 1])
    expect(warnings).toHaveLength(3)
    expect(registry.getStats()).toEqual(stats(0, {}))
  })
})
