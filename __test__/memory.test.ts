import { describe, expect, it } from 'vitest'
import { NitySessionRegistry } from 'nity-session-registry'
import { FakeSession, stale, type CloseBehaviour } from './helpers/sessions'

// vitest.config.ts runs test files with --expose-gc.
const gc: () => void = (() => {
  const fn = globalThis.gc
  if (typeof fn !== 'function') throw new Error('memory.test.ts needs --expose-gc')
  return () => fn()
})()

const tick = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Tells which tracked objects the garbage collector has reclaimed, through a
 * FinalizationRegistry. Objects are tracked by label.
 */
class Tracker {
  readonly collected = new Set<string>()
  count = 0
  private readonly finalizers = new FinalizationRegistry<string>((label) => {
    this.collected.add(label)
    this.count += 1
  })

  track<T extends object>(value: T, label: string): T {
    this.finalizers.register(value, label)
    return value
  }

  /** Counts without remembering labels (for very many objects). */
  trackAnonymously(value: object): void {
    this.finalizers.register(value, '')
  }

  /**
   * Collects garbage until every label is reported collected, or gives up
   * after `rounds` rounds. Returns the labels still not collected.
   */
  async collect(labels: readonly string[], rounds = 50): Promise<string[]> {
    const missing = (): string[] => labels.filter((label) => !this.collected.has(label))
    for (let round = 0; round < rounds && missing().length > 0; round++) {
      gc()
      await tick()
      // Now and then give the platform's finalization task a timer turn too.
      if (round % 10 === 9) await new Promise<void>((resolve) => setTimeout(resolve, 10))
    }
    return missing()
  }

  /** Collects garbage until `count` reaches `target` or stops moving. */
  async collectCount(target: number, idleRounds = 50): Promise<number> {
    let idle = 0
    let last = this.count
    while (this.count < target && idle < idleRounds) {
      gc()
      await tick()
      if (idle % 10 === 9) await new Promise<void>((resolve) => setTimeout(resolve, 10))
      if (this.count === last) idle += 1
      else {
        idle = 0
        last = this.count
      }
    }
    return this.count
  }

  /**
   * A plain object nobody keeps, then collects until it is gone: proof that
   * collections ran and finalizers were delivered. Labels in `kept` are
   * checked afterwards by the caller.
   */
  async collectSentinel(label: string): Promise<void> {
    this.track({ sentinel: label }, label)
    const missing = await this.collect([label])
    expect(missing, 'the sentinel object was never collected: GC/finalizers did not run').toEqual([])
    // A few more full collections, so a kept object had every chance to go.
    for (let i = 0; i < 5; i++) {
      gc()
      await tick()
    }
  }
}

/** Registers a tracked FakeSession made here, so no caller's variable keeps it. */
function registerTracked(
  registry: NitySessionRegistry<FakeSession>,
  tracker: Tracker,
  clientId: string,
  id: string,
  behaviour: CloseBehaviour = { kind: 'resolve' },
  prepare?: (session: FakeSession) => void,
): void {
  const session = new FakeSession(id, behaviour)
  prepare?.(session)
  tracker.track(session, id)
  registry.register(clientId, session)
}

/** Ids `${prefix}-0` … `${prefix}-${n - 1}`. */
const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

describe('handles removed from the registry can be garbage-collected', () => {
  it.each<[string, CloseBehaviour]>([
    ['resolves', { kind: 'resolve' }],
    ['returns nothing', { kind: 'sync' }],
    ['rejects', { kind: 'reject', error: new Error('close failed') }],
    ['throws', { kind: 'throw', error: new Error('close threw') }],
  ])('a handle removed by unregister (close %s) is collected; a registered one is not', async (_name, behaviour) => {
    const tracker = new Tracker()
    const registry = new NitySessionRegistry<FakeSession>()
    registerTracked(registry, tracker, 'client', 'removed', behaviour)
    registerTracked(registry, tracker, 'client', 'kept')

    const settled = registry.unregister('removed')
    if (behaviour.kind === 'reject' || behaviour.kind === 'throw') {
      await expect(settled).rejects.toBe(behaviour.error)
    } else {
      await expect(settled).resolves.toBeUndefined()
    }

    expect(await tracker.collect(['removed'])).toEqual([])
    await tracker.collectSentinel('sentinel')
    expect(tracker.collected.has('kept')).toBe(false)
    expect(registry.getSession('kept')?.id).toBe('kept')
    expect(registry.getStats().totalSessions).toBe(1)
  })

  it('a handle removed by unregister whose close settles later is collected once it settled', async () => {
    const tracker = new Tracker()
    const registry = new NitySessionRegistry<FakeSession>()
    // The close's settle function is kept here; it does not refer to the handle.
    const settlers: Array<() => void> = []
    registerTracked(registry, tracker, 'client', 'late', {
      kind: 'custom',
      run: () => new Promise<void>((resolve) => settlers.push(resolve)),
    })
    registerTracked(registry, tracker, 'client', 'kept')

    const settled = registry.unregister('late')
    await tick()
    expect(settlers).toHaveLength(1)
    settlers[0]()
    await expect(settled).resolves.toBeUndefined()

    expect(await tracker.collect(['late'])).toEqual([])
    await tracker.collectSentinel('sentinel')
    expect(tracker.collected.has('kept')).toBe(false)
    expect(registry.getSession('kept')?.id).toBe('kept')
  })

  it('handles removed by cleanupClient are collected; another client’s are not', async () => {
    const tracker = new Tracker()
    const registry = new NitySessionRegistry<FakeSession>()
    const leaving = ids('leaving', 5)
    const staying = ids('staying', 3)
    leaving.forEach((id, i) =>
      registerTracked(registry, tracker, 'leaving-client', id, i % 2 ? { kind: 'sync' } : { kind: 'resolve' }),
    )
    staying.forEach((id) => registerTracked(registry, tracker, 'staying-client', id))

    await expect(registry.cleanupClient('leaving-client')).resolves.toBe(5)

    expect(await tracker.collect(leaving)).toEqual([])
    await tracker.collectSentinel('sentinel')
    expect(staying.filter((id) => tracker.collected.has(id))).toEqual([])
    expect(registry.getClientSessions('staying-client').map((s) => s.id)).toEqual(staying)
  })

  it.each<[string, (s: FakeSession) => void]>([
    ['in the error state', (s) => stale(s, 'error')],
    ['timed out', (s) => stale(s, 'timedOut')],
    [
      'whose getHealth throws',
      (s) => {
        s.healthError = new Error('health failed')
      },
    ],
  ])('handles removed by cleanupStale (%s) are collected; healthy ones are not', async (_name, makeStale) => {
    const tracker = new Tracker()
    const registry = new NitySessionRegistry<FakeSession>()
    const staleIds = ids('stale', 4)
    const healthyIds = ids('healthy', 3)
    staleIds.forEach((id, i) =>
      registerTracked(registry, tracker, `client-${i % 2}`, id, { kind: 'resolve' }, makeStale),
    )
    healthyIds.forEach((id, i) => registerTracked(registry, tracker, `client-${i % 2}`, id))

    await expect(registry.cleanupStale()).resolves.toBe(4)

    expect(await tracker.collect(staleIds)).toEqual([])
    await tracker.collectSentinel('sentinel')
    expect(healthyIds.filter((id) => tracker.collected.has(id))).toEqual([])
    expect(healthyIds.map((id) => registry.getSession(id)?.id)).toEqual(healthyIds)
  })

  it('a handle that stays registered is not collected while the registry is alive', async () => {
    const tracker = new Tracker()
    const registry = new NitySessionRegistry<FakeSession>()
    const kept = ids('kept', 6)
    kept.forEach((id, i) => registerTracked(registry, tracker, `client-${i % 3}`, id))
    // Churn around the kept handles, reusing the slots of removed ones.
    registerTracked(registry, tracker, 'client-0', 'gone-1')
    registerTracked(registry, tracker, 'gone-client', 'gone-2')
    await registry.unregister('gone-1')
    await registry.cleanupClient('gone-client')
    registerTracked(registry, tracker, 'client-1', 'late-kept')

    expect(await tracker.collect(['gone-1', 'gone-2'])).toEqual([])
    await tracker.collectSentinel('sentinel')

    expect([...kept, 'late-kept'].filter((id) => tracker.collected.has(id))).toEqual([])
    for (const id of [...kept, 'late-kept']) {
      const session = registry.getSession(id)
      expect(session).toBeInstanceOf(FakeSession)
      expect(session?.id).toBe(id)
      expect(session?.closeCalls).toBe(0)
    }
    expect(registry.getStats().totalSessions).toBe(7)
  })

  it('a handle rejected as a duplicate is not kept; the first registration is', async () => {
    const tracker = new Tracker()
    const registry = new NitySessionRegistry<FakeSession>()
    registerTracked(registry, tracker, 'client', 'dup')
    ;(() => {
      const duplicate = tracker.track(new FakeSession('dup'), 'duplicate')
      expect(() => registry.register('other-client', duplicate)).toThrow()
    })()

    expect(await tracker.collect(['duplicate'])).toEqual([])
    await tracker.collectSentinel('sentinel')
    expect(tracker.collected.has('dup')).toBe(false)
    expect(registry.getSession('dup')?.closeCalls).toBe(0)
  })
})

/** A session that refers back to its registry. */
class LinkedSession extends FakeSession {
  registry: NitySessionRegistry<LinkedSession> | undefined
  unsubscribe: (() => void) | undefined
}

interface BuildOptions {
  /** Handles point back at the registry. */
  cycle?: boolean
  /** Close listeners (options and onSessionClosed) close over the registry. */
  listeners?: boolean
  /** Start never-settling closes (unregister, cleanupClient, cleanupStale) and drop their promises. */
  pendingCloses?: boolean
  /** The registry's close deadline (default: the registry's default). */
  closeTimeoutMs?: number
}

/**
 * Builds a registry with tracked handles as `${prefix}:…` and tracks the
 * registry itself as `${prefix}:registry`. Returns the registry and every
 * label it tracked.
 */
function buildRegistry(
  tracker: Tracker,
  prefix: string,
  options: BuildOptions,
): { registry: NitySessionRegistry<LinkedSession>; labels: string[] } {
  const labels: string[] = [`${prefix}:registry`]
  const events: string[] = []
  const registry: NitySessionRegistry<LinkedSession> = new NitySessionRegistry<LinkedSession>({
    closeTimeoutMs: options.closeTimeoutMs,
    onSessionClosed: options.listeners
      ? (event) => events.push(`${event.reason}:${registry.getStats().totalSessions}`)
      : undefined,
  })
  tracker.track(registry, `${prefix}:registry`)
  const unsubscribe = options.listeners ? registry.onSessionClosed(() => registry.getStats()) : undefined

  const add = (clientId: string, id: string, behaviour: CloseBehaviour, makeStale = false): void => {
    const session = new LinkedSession(`${prefix}:${id}`, behaviour)
    if (options.cycle) session.registry = registry
    if (unsubscribe) session.unsubscribe = unsubscribe
    if (makeStale) stale(session, 'error')
    tracker.track(session, session.id)
    labels.push(session.id)
    registry.register(clientId, session)
  }
  for (let i = 0; i < 10; i++) add(`client-${i % 3}`, `s${i}`, i % 2 ? { kind: 'sync' } : { kind: 'resolve' })

  if (options.pendingCloses) {
    add('pending', 'never-unregister', { kind: 'never' })
    add('pending-batch', 'never-batch-0', { kind: 'never' })
    add('pending-batch', 'never-batch-1', { kind: 'never' })
    add('pending', 'never-stale', { kind: 'never' }, true)
    registry.unregister(`${prefix}:never-unregister`).catch(() => {}) // times out at the deadline
    void registry.cleanupClient('pending-batch')
    void registry.cleanupStale()
  }
  return { registry, labels }
}

/** Builds a registry and drops it at once: returns only the labels. */
function buildAndDrop(tracker: Tracker, prefix: string, options: BuildOptions): string[] {
  return buildRegistry(tracker, prefix, options).labels
}

describe('a registry dropped without cleanup', () => {
  it.each<[string, BuildOptions]>([
    ['with plain handles', {}],
    ['when its handles reference the registry', { cycle: true }],
    ['when close listeners close over the registry', { listeners: true }],
    ['with handle cycles and listeners together', { cycle: true, listeners: true }],
  ])('is collected with every handle (%s); a kept one is not', async (_name, options) => {
    const tracker = new Tracker()
    const dropped = buildAndDrop(tracker, 'dropped', options)
    const { registry: kept, labels: keptLabels } = buildRegistry(tracker, 'kept', options)

    expect(await tracker.collect(dropped)).toEqual([])
    await tracker.collectSentinel('sentinel')
    expect(keptLabels.filter((label) => tracker.collected.has(label))).toEqual([])
    expect(kept.getStats().totalSessions).toBe(10)
    expect(kept.getSession('kept:s0')?.registry).toBe(options.cycle ? kept : undefined)
    await expect(kept.cleanupClient('client-0')).resolves.toBe(4)
  })

  it('a registry whose closes already settled is collected with its handles', async () => {
    const tracker = new Tracker()
    const labels = await (async () => {
      const { registry, labels } = buildRegistry(tracker, 'used', { cycle: true, listeners: true })
      await registry.unregister('used:s0')
      await registry.cleanupClient('client-1')
      return labels
    })()
    expect(await tracker.collect(labels)).toEqual([])
  })
})

/** A real sleep (vitest's timers are real in this file). */
const sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Waits on the real clock until `done()` or `ms` passed. */
async function waitFor(done: () => boolean, ms: number): Promise<void> {
  const until = performance.now() + ms
  while (!done() && performance.now() < until) await sleep(5)
}

// A close that never settles is given up on at its deadline. Until then the
// deadline timer holds what settles it (the close queue, the promise of the
// call that started it, whatever awaits that promise); a garbage collection
// in between must not take them, or the awaited call would hang forever.
// Once it settled, everything is released.
describe('a registry dropped while closes are pending', () => {
  const CLOSE_TIMEOUT_MS = 400

  it.each<[string, BuildOptions]>([
    ['plain handles', { pendingCloses: true, closeTimeoutMs: CLOSE_TIMEOUT_MS }],
    [
      'handle cycles and listeners',
      { pendingCloses: true, cycle: true, listeners: true, closeTimeoutMs: CLOSE_TIMEOUT_MS },
    ],
  ])('is collected with its handles, pending or registered, once the deadlines passed (%s)', async (_name, options) => {
    const tracker = new Tracker()
    const dropped = buildAndDrop(tracker, 'dropped', options)
    const { registry: kept, labels: keptLabels } = buildRegistry(tracker, 'kept', options)
    await tracker.collectSentinel('sentinel-early')

    await sleep(CLOSE_TIMEOUT_MS + 50)
    expect(await tracker.collect(dropped)).toEqual([])
    await tracker.collectSentinel('sentinel')
    // The kept registry and its still-registered handles stay.
    const keptRegistered = keptLabels.filter((label) => label === 'kept:registry' || /^kept:s\d+$/.test(label))
    expect(keptRegistered.filter((label) => tracker.collected.has(label))).toEqual([])
    expect(kept.getStats().totalSessions).toBe(10)
  })

  type Call = 'unregister' | 'cleanupClient' | 'cleanupStale' | 'dispose'
  it.each<Call>(['unregister', 'cleanupClient', 'cleanupStale', 'dispose'])(
    'settles an awaited %s whose close never settles by the deadline, though a collection ran meanwhile; then releases everything',
    async (how) => {
      const tracker = new Tracker()
      const outcome: { settled: boolean; value?: unknown; error?: unknown; timedOutEvents: unknown[] } = {
        settled: false,
        timedOutEvents: [],
      }
      let started = 0
      // The repro: a function makes the registry, registers a
      // session whose close never settles, starts the call and keeps only
      // its promise; the caller awaits it and keeps nothing else.
      const labels = ((): string[] => {
        const registry = new NitySessionRegistry<FakeSession>({
          closeTimeoutMs: CLOSE_TIMEOUT_MS,
          onSessionClosed: (event) => {
            if (event.timedOut) outcome.timedOutEvents.push(event.error)
          },
        })
        tracker.track(registry, 'repro:registry')
        const session = tracker.track(new FakeSession('hang', { kind: 'never' }), 'repro:hang')
        if (how === 'cleanupStale') stale(session, 'error')
        registry.register('client', session)
        started = performance.now()
        const promise: Promise<unknown> =
          how === 'unregister'
            ? registry.unregister('hang')
            : how === 'cleanupClient'
              ? registry.cleanupClient('client')
              : how === 'cleanupStale'
                ? registry.cleanupStale()
                : registry.dispose()
        promise.then(
          (value) => Object.assign(outcome, { settled: true, value }),
          (error: unknown) => Object.assign(outcome, { settled: true, error }),
        )
        return ['repro:registry', 'repro:hang']
      })()

      // Collections while the close is pending (the sentinel proves they ran).
      gc()
      await tracker.collectSentinel('sentinel-pending')
      expect(outcome.settled, 'settled before its deadline').toBe(false)

      await waitFor(() => outcome.settled, CLOSE_TIMEOUT_MS + 5_000)
      const elapsed = performance.now() - started
      expect(outcome.settled, 'the call never settled').toBe(true)
      // Timers may fire a millisecond early on the wall clock; never much
      // later than the deadline, but a loaded machine is slow.
      expect(elapsed).toBeGreaterThanOrEqual(CLOSE_TIMEOUT_MS - 2)
      expect(elapsed).toBeLessThan(CLOSE_TIMEOUT_MS + 3_000)
      if (how === 'unregister') {
        expect(outcome.error).toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
      } else {
        expect(outcome.value).toBe(1)
      }
      expect(outcome.timedOutEvents).toEqual([expect.objectContaining({ code: 'ERR_CLOSE_TIMEOUT' })])

      // Settled: nothing holds the registry or the hanging handle any more.
      expect(await tracker.collect(labels)).toEqual([])
    },
  )

  it('settles the awaited call even when the code awaiting it refers to the registry, and then releases it', async () => {
    const tracker = new Tracker()
    const outcome: string[] = []
    const labels = ((): string[] => {
      const { registry, labels } = buildRegistry(tracker, 'awaited', { closeTimeoutMs: CLOSE_TIMEOUT_MS })
      const session = new LinkedSession('awaited:never', { kind: 'never' })
      tracker.track(session, session.id)
      labels.push(session.id)
      registry.register('pending-client', session)
      // Like a request handler: `await registry.x(); registry.getStats()`.
      void (async () => {
        try {
          await registry.unregister('awaited:never')
        } catch (error) {
          outcome.push((error as { code?: string }).code ?? 'no code')
        }
        outcome.push(`total ${registry.getStats().totalSessions}`)
      })()
      return labels
    })()
    await tracker.collectSentinel('sentinel-pending')
    await waitFor(() => outcome.length === 2, CLOSE_TIMEOUT_MS + 5_000)
    expect(outcome).toEqual(['ERR_CLOSE_TIMEOUT', 'total 10'])
    expect(await tracker.collect(labels)).toEqual([])
  })
})

/** `promise.then(() => value)`, made where nothing else is in scope. */
function holdUntilSettled(promise: Promise<unknown>, value: object): void {
  promise.then(
    () => value,
    () => value,
  )
}

describe('a registry dropped while a close is pending releases that close', () => {
  it('the pending promise, and what its callbacks hold, are collected with the registry once the deadline settled it', async () => {
    const tracker = new Tracker()
    const labels = ((): string[] => {
      const { registry, labels } = buildRegistry(tracker, 'released', { closeTimeoutMs: 200 })
      const session = tracker.track(new LinkedSession('released:never', { kind: 'never' }), 'released:never')
      registry.register('pending-client', session)
      const promise = tracker.track(registry.unregister('released:never'), 'released:promise')
      holdUntilSettled(
        promise,
        tracker.track({ payload: 'held by a callback of the pending promise' }, 'released:held'),
      )
      return [...labels, 'released:never', 'released:promise', 'released:held']
    })()
    await tracker.collectSentinel('sentinel-pending')
    expect(tracker.collected.has('released:promise'), 'a promise someone may await went before it settled').toBe(false)
    await sleep(250)
    expect(await tracker.collect(labels)).toEqual([])
  })
})

describe('many register/unregister cycles', () => {
  /**
   * Runs `cycles` register/remove cycles on `registry`, in batches, through
   * unregister, cleanupClient and cleanupStale in turn. Every handle is made
   * here and passed to `onHandle`.
   */
  async function churn(
    registry: NitySessionRegistry<FakeSession>,
    from: number,
    cycles: number,
    onHandle: (session: FakeSession) => void = () => {},
  ): Promise<void> {
    const batch = 1000
    for (let start = from; start < from + cycles; start += batch) {
      const end = Math.min(start + batch, from + cycles)
      const kind = (start / batch) % 3
      const client = `client-${start}`
      for (let i = start; i < end; i++) {
        const session = new FakeSession(`session-${i}`, i % 2 ? { kind: 'sync' } : { kind: 'resolve' })
        if (kind === 2) stale(session, 'error')
        onHandle(session)
        registry.register(`${client}-${i % 4}`, session)
      }
      if (kind === 0) {
        const closes: Promise<void>[] = []
        for (let i = start; i < end; i++) closes.push(registry.unregister(`session-${i}`))
        await Promise.all(closes)
      } else if (kind === 1) {
        let removed = 0
        for (let c = 0; c < 4; c++) removed += await registry.cleanupClient(`${client}-${c}`)
        if (removed !== end - start) throw new Error(`cleanupClient removed ${removed} of ${end - start}`)
      } else {
        const removed = await registry.cleanupStale()
        if (removed !== end - start) throw new Error(`cleanupStale removed ${removed} of ${end - start}`)
      }
    }
  }

  it('200k cycles: every removed handle is collected, a kept one is not', async () => {
    const tracker = new Tracker()
    const registry = new NitySessionRegistry<FakeSession>()
    registerTracked(registry, tracker, 'kept-client', 'kept')
    const cycles = 200_000
    let tracked = 0
    await churn(registry, 0, cycles, (session) => {
      tracker.trackAnonymously(session)
      tracked += 1
    })
    expect(tracked).toBe(cycles)
    expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { 'kept-client': 1 } })

    expect(await tracker.collectCount(cycles)).toBe(cycles)
    expect(tracker.collected.has('kept')).toBe(false)
    expect(registry.getSession('kept')?.closeCalls).toBe(0)
  }, 180_000)

  it('handles looked up before they were removed are collected, with no call that reads activity after', async () => {
    const tracker = new Tracker()
    const registry = new NitySessionRegistry<FakeSession>()
    registerTracked(registry, tracker, 'kept-client', 'kept')
    const cycles = 3_000
    for (let i = 0; i < cycles; i++) {
      const session = new FakeSession(`looked-up-${i}`, { kind: 'sync' })
      tracker.trackAnonymously(session)
      registry.register(`client-${i % 7}`, session)
      expect(registry.getSession(session.id)).toBe(session)
      expect(registry.getClientSessions(`client-${i % 7}`)).toContain(session)
      await registry.unregister(session.id)
    }
    // The lookups of those sessions were never handed to the core (nothing
    // read activity since), and still nothing keeps their handles.
    expect(await tracker.collectCount(cycles)).toBe(cycles)
    expect(registry.getSession('kept')?.id).toBe('kept')
  }, 60_000)

  it('200k cycles do not grow memory without bound', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    registry.register('kept-client', new FakeSession('kept'))

    const measure = async (): Promise<{ heap: number; rss: number }> => {
      // The smallest of a few readings after full collections.
      let heap = Infinity
      let rss = Infinity
      for (let i = 0; i < 5; i++) {
        gc()
        await tick()
        const usage = process.memoryUsage()
        heap = Math.min(heap, usage.heapUsed + usage.external)
        rss = Math.min(rss, usage.rss)
      }
      return { heap, rss }
    }

    // Warm up: let the heap, the registry's tables and the JIT settle.
    await churn(registry, 0, 50_000)
    const before = await measure()
    const cycles = 200_000
    await churn(registry, 50_000, cycles)
    const after = await measure()

    expect(registry.getStats().totalSessions).toBe(1)
    // A FakeSession with its health object and id is well over 200 bytes,
    // so keeping the removed ones would add ~40 MB here. Allow 8 MB
    // (40 bytes per cycle) of noise.
    const heapGrowth = after.heap - before.heap
    expect(heapGrowth, `heapUsed+external grew by ${heapGrowth} bytes`).toBeLessThan(8 * 1024 * 1024)
    // RSS also counts heap pages V8 reserves and keeps; only a loose bound.
    const rssGrowth = after.rss - before.rss
    expect(rssGrowth, `rss grew by ${rssGrowth} bytes`).toBeLessThan(96 * 1024 * 1024)
  }, 180_000)
})
