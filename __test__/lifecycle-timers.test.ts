import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import {
  NitySessionRegistry,
  type NitySessionClock,
  type NitySessionClosedEvent,
  type NitySessionHandle,
  type NitySessionRegistryOptions,
  type NitySessionRegistryStats,
} from 'nity-session-registry'
import { ManualClock } from './helpers/clock'
import { FakeSession, flush, stale } from './helpers/sessions'
import { firstMessage, runNode, runWorker } from './helpers/processes'

const fixtures = path.join(__dirname, 'fixtures', 'lifecycle-timers')
const fixture = (name: string): string => path.join(fixtures, name)

/** A FakeSession that counts its `getHealth()` calls: one per stale scan. */
class CountingSession extends FakeSession {
  healthCalls = 0

  override getHealth() {
    this.healthCalls += 1
    return super.getHealth()
  }
}

/** `stale()` for a CountingSession. */
function staleCounting(session: CountingSession, how: 'timedOut' | 'error'): CountingSession {
  stale(session, how)
  return session
}

/** A clock whose time is set, backwards too; its timers never fire. */
class SettableClock implements NitySessionClock {
  time = 5_000
  now(): number {
    return this.time
  }
  setTimeout(): number {
    return 0
  }
  clearTimeout(): void {}
}

/** What `fn` threw (fails the test when it did not throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  throw new Error('expected the call to throw')
}

/** Follows a promise's state without awaiting it. */
function track<T>(promise: Promise<T>): { settled: boolean; rejected: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; rejected: boolean; value?: T; error?: unknown } = { settled: false, rejected: false }
  promise.then(
    (value) => {
      state.settled = true
      state.value = value
    },
    (error: unknown) => {
      state.settled = true
      state.rejected = true
      state.error = error
    },
  )
  return state
}

/**
 * Flushes until `condition` holds (bounded), for things that must happen,
 * then once more so the work that made it hold can finish (a scan's end arms
 * the next run).
 */
async function until(condition: () => boolean, rounds = 50): Promise<void> {
  for (let i = 0; i < rounds && !condition(); i++) await flush()
  await flush()
}

/** A registry on a ManualClock that records its close events. */
function setUp<H extends NitySessionHandle = FakeSession>(options: NitySessionRegistryOptions = {}) {
  const clock = new ManualClock()
  const events: NitySessionClosedEvent[] = []
  const registry = new NitySessionRegistry<H>({ clock, ...options, onSessionClosed: (event) => events.push(event) })
  return { clock, events, registry, t0: clock.now() }
}

describe('automatic stale cleanup', () => {
  it('the cleanupIntervalMs option runs the stale cleanup one interval after creation, closing stale sessions with reason cleanupStale', async () => {
    const { clock, events, registry } = setUp<CountingSession>({ cleanupIntervalMs: 1000 })
    const healthy = new CountingSession('healthy')
    const errored = staleCounting(new CountingSession('errored'), 'error')
    const timedOut = staleCounting(new CountingSession('timed-out'), 'timedOut')
    for (const s of [healthy, errored, timedOut]) registry.register('c', s)

    clock.advance(999)
    await flush()
    expect(healthy.healthCalls).toBe(0)
    expect(errored.closeCalls + timedOut.closeCalls).toBe(0)
    expect(registry.getStats().totalSessions).toBe(3)

    clock.advance(1)
    await until(() => events.length === 2)
    expect(healthy.healthCalls).toBe(1)
    expect(errored.closeCalls).toBe(1)
    expect(timedOut.closeCalls).toBe(1)
    expect(healthy.closeCalls).toBe(0)
    expect(events.map((e) => [e.sessionId, e.reason]).sort()).toEqual([
      ['errored', 'cleanupStale'],
      ['timed-out', 'cleanupStale'],
    ])
    expect(registry.getClientSessions('c')).toEqual([healthy])
    expect(registry.getMetrics().closesByReason.cleanupStale).toBe(2)
  })

  it('runs again one interval after each run finished, picking up sessions that went stale in between', async () => {
    const { clock, events, registry } = setUp<CountingSession>({ cleanupIntervalMs: 1000 })
    const watcher = new CountingSession('watcher')
    const later = new CountingSession('later')
    registry.register('c', watcher)
    registry.register('c', later)
    for (let run = 1; run <= 3; run++) {
      clock.advance(1000)
      await until(() => watcher.healthCalls === run)
      expect(watcher.healthCalls).toBe(run)
    }
    expect(events).toEqual([])
    stale(later, 'error')
    clock.advance(999)
    await flush()
    expect(later.closeCalls).toBe(0)
    clock.advance(1)
    await until(() => events.length === 1)
    expect(later.closeCalls).toBe(1)
    expect(events).toMatchObject([{ sessionId: 'later', reason: 'cleanupStale' }])
    expect(watcher.healthCalls).toBe(4)
  })

  it('does not start another run while a close of the previous run has not settled; the next run comes one interval after it settled', async () => {
    const { clock, events, registry } = setUp<CountingSession>({ cleanupIntervalMs: 1000 })
    const watcher = new CountingSession('watcher')
    const slow = staleCounting(new CountingSession('slow', { kind: 'manual' }), 'error')
    registry.register('c', watcher)
    registry.register('c', slow)

    clock.advance(1000)
    await until(() => slow.closeCalls === 1)
    expect(slow.closeCalls).toBe(1)
    expect(watcher.healthCalls).toBe(1)
    expect(registry.getSession('slow')).toBeUndefined()

    // Went stale while the run is still waiting for slow's close.
    const late = staleCounting(new CountingSession('late'), 'error')
    registry.register('c', late)
    // Several intervals, all well before the 10 s close deadline.
    for (let i = 0; i < 5; i++) {
      clock.advance(1000)
      await flush()
    }
    expect(watcher.healthCalls).toBe(1)
    expect(late.closeCalls).toBe(0)
    expect(events).toEqual([])

    slow.settle!.resolve()
    await until(() => events.length === 1)
    expect(events).toMatchObject([{ sessionId: 'slow', reason: 'cleanupStale' }])
    expect(events[0].timedOut).toBeUndefined()

    clock.advance(999)
    await flush()
    expect(watcher.healthCalls).toBe(1)
    expect(late.closeCalls).toBe(0)
    clock.advance(1)
    await until(() => watcher.healthCalls === 2 && events.length === 2)
    expect(watcher.healthCalls).toBe(2)
    expect(late.closeCalls).toBe(1)
    expect(events[1]).toMatchObject({ sessionId: 'late', reason: 'cleanupStale' })
  })

  it('a run waiting on a close that never settles finishes at the close deadline, and the next run comes one interval after that', async () => {
    const { clock, events, registry, t0 } = setUp<CountingSession>({ cleanupIntervalMs: 1000, closeTimeoutMs: 5000 })
    const watcher = new CountingSession('watcher')
    registry.register('c', watcher)
    registry.register('c', staleCounting(new CountingSession('stuck', { kind: 'never' }), 'error'))

    clock.advance(1000) // run 1 at t0 + 1000; the close's deadline is t0 + 6000
    await until(() => watcher.healthCalls === 1)
    for (let i = 0; i < 4; i++) {
      clock.advance(1000)
      await flush()
    }
    expect(clock.now()).toBe(t0 + 5000)
    expect(watcher.healthCalls).toBe(1)
    expect(events).toEqual([])

    clock.advance(1000) // the deadline
    await until(() => events.length === 1)
    expect(events).toMatchObject([{ sessionId: 'stuck', reason: 'cleanupStale', timedOut: true }])
    clock.advance(999)
    await flush()
    expect(watcher.healthCalls).toBe(1)
    clock.advance(1)
    await until(() => watcher.healthCalls === 2)
    expect(watcher.healthCalls).toBe(2)
  })

  it('stopAutoCleanup() is idempotent and leaves no armed timer; no run happens after it', async () => {
    const { clock, registry } = setUp<CountingSession>({ cleanupIntervalMs: 1000 })
    const watcher = new CountingSession('watcher')
    const errored = staleCounting(new CountingSession('errored'), 'error')
    registry.register('c', watcher)
    registry.register('c', errored)
    expect(clock.pending).toBe(1)

    expect(registry.stopAutoCleanup()).toBeUndefined()
    expect(clock.pending).toBe(0)
    expect(() => registry.stopAutoCleanup()).not.toThrow()
    expect(clock.pending).toBe(0)

    clock.advance(60_000)
    await flush()
    expect(watcher.healthCalls).toBe(0)
    expect(errored.closeCalls).toBe(0)
    expect(registry.getStats().totalSessions).toBe(2)
    // Never started: stopping is harmless too.
    const other = setUp()
    expect(() => other.registry.stopAutoCleanup()).not.toThrow()
    expect(other.clock.pending).toBe(0)
  })

  it('stopAutoCleanup() during a run lets the run finish but schedules no other', async () => {
    const { clock, events, registry } = setUp<CountingSession>({ cleanupIntervalMs: 1000 })
    const watcher = new CountingSession('watcher')
    const slow = staleCounting(new CountingSession('slow', { kind: 'manual' }), 'error')
    registry.register('c', watcher)
    registry.register('c', slow)

    clock.advance(1000)
    await until(() => slow.closeCalls === 1)
    expect(slow.closeCalls).toBe(1)
    registry.stopAutoCleanup()
    slow.settle!.resolve()
    await until(() => events.length === 1)
    expect(events).toMatchObject([{ sessionId: 'slow', reason: 'cleanupStale' }])

    const late = staleCounting(new CountingSession('late'), 'error')
    registry.register('c', late)
    for (let i = 0; i < 20; i++) {
      clock.advance(1000)
      await flush()
    }
    expect(watcher.healthCalls).toBe(1)
    expect(late.closeCalls).toBe(0)
    expect(events).toHaveLength(1)
    expect(clock.pending).toBe(0)
  })

  it('startAutoCleanup() without an interval and without the cleanupIntervalMs option throws a TypeError and arms nothing', () => {
    const { clock, registry } = setUp()
    const error = thrown(() => registry.startAutoCleanup())
    expect(error).toBeInstanceOf(TypeError)
    expect(clock.pending).toBe(0)
  })

  it('startAutoCleanup(intervalMs) starts the cleanup without the option; startAutoCleanup() uses the option', async () => {
    const a = setUp<CountingSession>()
    const watcherA = new CountingSession('a')
    a.registry.register('c', watcherA)
    expect(a.clock.pending).toBe(0)
    a.registry.startAutoCleanup(300)
    expect(a.clock.pending).toBe(1)
    a.clock.advance(299)
    await flush()
    expect(watcherA.healthCalls).toBe(0)
    a.clock.advance(1)
    await until(() => watcherA.healthCalls === 1)
    expect(watcherA.healthCalls).toBe(1)

    const b = setUp<CountingSession>({ cleanupIntervalMs: 700 })
    const watcherB = new CountingSession('b')
    b.registry.register('c', watcherB)
    b.registry.stopAutoCleanup()
    b.registry.startAutoCleanup()
    expect(b.clock.pending).toBe(1)
    b.clock.advance(699)
    await flush()
    expect(watcherB.healthCalls).toBe(0)
    b.clock.advance(1)
    await until(() => watcherB.healthCalls === 1)
    expect(watcherB.healthCalls).toBe(1)
  })

  it('restarting with a new interval replaces the old timer: only one is armed and the new interval applies', async () => {
    const { clock, registry } = setUp<CountingSession>({ cleanupIntervalMs: 1000 })
    const watcher = new CountingSession('watcher')
    registry.register('c', watcher)
    expect(clock.pending).toBe(1)
    registry.startAutoCleanup(5000)
    expect(clock.pending).toBe(1)
    registry.startAutoCleanup(3000)
    expect(clock.pending).toBe(1)

    clock.advance(2999)
    await flush()
    expect(watcher.healthCalls).toBe(0)
    clock.advance(1)
    await until(() => watcher.healthCalls === 1)
    expect(watcher.healthCalls).toBe(1)
    expect(clock.pending).toBe(1)
    // The next run, 3000 after that one finished; nothing from the 5000 timer.
    clock.advance(2999)
    await flush()
    expect(watcher.healthCalls).toBe(1)
    clock.advance(1)
    await until(() => watcher.healthCalls === 2)
    expect(watcher.healthCalls).toBe(2)
    expect(clock.pending).toBe(1)
  })

  it('dispose() stops the auto cleanup, and startAutoCleanup after dispose() throws ERR_REGISTRY_DISPOSED', async () => {
    const { clock, registry } = setUp({ cleanupIntervalMs: 1000 })
    // A close that returns nothing: no close deadline is ever armed, so the
    // only timer is the auto cleanup's.
    registry.register('c', new FakeSession('a', { kind: 'sync' }))
    expect(clock.pending).toBe(1)
    await expect(registry.dispose()).resolves.toBe(1)
    expect(clock.pending).toBe(0)
    const error = thrown(() => registry.startAutoCleanup(1000))
    expect(error).toMatchObject({ code: 'ERR_REGISTRY_DISPOSED' })
    expect(clock.pending).toBe(0)
  })

  it.each([
    ['the cleanupIntervalMs option', (_r: NitySessionRegistry<FakeSession>): void => {}],
    ['startAutoCleanup(intervalMs)', (r: NitySessionRegistry<FakeSession>): void => r.startAutoCleanup(10)],
  ] as const)(
    'a dropped registry whose auto cleanup (%s) runs on the default system clock is garbage-collected',
    async (name, start) => {
      const gc = globalThis.gc
      if (typeof gc !== 'function') throw new Error('this test needs --expose-gc')
      const collected = new Set<string>()
      const finalizers = new FinalizationRegistry<string>((label) => collected.add(label))
      ;(() => {
        const registry = new NitySessionRegistry<FakeSession>(
          name === 'the cleanupIntervalMs option' ? { cleanupIntervalMs: 10 } : undefined,
        )
        for (let i = 0; i < 10; i++) registry.register(`c-${i % 2}`, new FakeSession(`s-${i}`))
        registry.register('c-0', stale(new FakeSession('stale', { kind: 'never' }), 'error'))
        start(registry)
        finalizers.register(registry, 'registry')
      })()
      ;(() => finalizers.register({ sentinel: true }, 'sentinel'))()
      for (let round = 0; round < 100 && !(collected.has('registry') && collected.has('sentinel')); round++) {
        gc()
        await new Promise<void>((resolve) => setImmediate(resolve))
        if (round % 10 === 9) await new Promise<void>((resolve) => setTimeout(resolve, 10))
      }
      expect(collected.has('sentinel'), 'GC or finalizers did not run').toBe(true)
      expect(collected.has('registry')).toBe(true)
      // Its timer may still come due: it must do nothing harmful.
      await new Promise<void>((resolve) => setTimeout(resolve, 30))
    },
  )

  it('a worker whose dropped auto-cleaning registries are collected still exits by itself with code 0', async () => {
    const run = await runWorker<{ error?: string; collected: string[]; keptStats: NitySessionRegistryStats }>(
      fixture('gc-worker.cjs'),
    )
    expect(run.error).toBeUndefined()
    expect(run.messages).toHaveLength(1)
    expect(run.messages[0].error).toBeUndefined()
    expect(run.messages[0].collected).toEqual(['option', 'started'])
    expect(run.messages[0].keptStats.totalSessions).toBe(1)
    expect(run.exitCode).toBe(0)
  }, 60_000)
})

describe('idle timeout', () => {
  it('closes a session idle strictly longer than idleTimeoutMs with reason idle, not one idle exactly that long', async () => {
    const { clock, events, registry } = setUp({ idleTimeoutMs: 1000 })
    const session = new FakeSession('idle')
    registry.register('c', session)
    clock.advance(1000)
    await expect(registry.cleanupStale()).resolves.toBe(0)
    expect(session.closeCalls).toBe(0)
    clock.advance(1)
    await expect(registry.cleanupStale()).resolves.toBe(1)
    expect(session.closeCalls).toBe(1)
    await until(() => events.length === 1)
    expect(events).toMatchObject([{ sessionId: 'idle', clientId: 'c', reason: 'idle' }])
    expect(registry.getSession('idle')).toBeUndefined()
    expect(registry.getMetrics().closesByReason.idle).toBe(1)
  })

  it('without idleTimeoutMs an idle session is never closed for idleness', async () => {
    const { clock, registry } = setUp()
    const session = new FakeSession('idle')
    registry.register('c', session)
    clock.advance(365 * 24 * 3600_000)
    await expect(registry.cleanupStale()).resolves.toBe(0)
    expect(session.closeCalls).toBe(0)
  })

  it('the automatic cleanup closes idle sessions with reason idle', async () => {
    const { clock, events, registry } = setUp({ idleTimeoutMs: 1500, cleanupIntervalMs: 1000 })
    const session = new FakeSession('idle')
    registry.register('c', session)
    clock.advance(1000)
    await flush()
    expect(session.closeCalls).toBe(0)
    clock.advance(1000)
    await until(() => events.length === 1)
    expect(session.closeCalls).toBe(1)
    expect(events).toMatchObject([{ sessionId: 'idle', reason: 'idle' }])
  })

  it('touch() counts as activity and returns true, or false for an unknown session', async () => {
    const { clock, registry } = setUp({ idleTimeoutMs: 1000 })
    const session = new FakeSession('s')
    registry.register('c', session)
    clock.advance(800)
    expect(registry.touch('s')).toBe(true)
    expect(registry.touch('unknown')).toBe(false)
    clock.advance(800) // 1600 since registration, 800 since the touch
    await expect(registry.cleanupStale()).resolves.toBe(0)
    expect(session.closeCalls).toBe(0)
    clock.advance(201)
    await expect(registry.cleanupStale()).resolves.toBe(1)
    expect(session.closeCalls).toBe(1)
    expect(registry.touch('s')).toBe(false)
  })

  it('a getSession() hit counts as activity', async () => {
    const { clock, registry } = setUp({ idleTimeoutMs: 1000 })
    const looked = new FakeSession('looked')
    const ignored = new FakeSession('ignored')
    registry.register('c', looked)
    registry.register('c', ignored)
    clock.advance(600)
    expect(registry.getSession('looked')).toBe(looked)
    expect(registry.getSession('missing')).toBeUndefined()
    clock.advance(401)
    await expect(registry.cleanupStale()).resolves.toBe(1)
    expect(ignored.closeCalls).toBe(1)
    expect(looked.closeCalls).toBe(0)
    clock.advance(600)
    await expect(registry.cleanupStale()).resolves.toBe(1)
    expect(looked.closeCalls).toBe(1)
  })

  it('getClientSessions() counts as activity for each session it returns', async () => {
    const { clock, registry } = setUp({ idleTimeoutMs: 1000 })
    const a1 = new FakeSession('a1')
    const a2 = new FakeSession('a2')
    const b1 = new FakeSession('b1')
    registry.register('a', a1)
    registry.register('a', a2)
    registry.register('b', b1)
    clock.advance(600)
    expect(registry.getClientSessions('a')).toEqual([a1, a2])
    clock.advance(401)
    await expect(registry.cleanupStale()).resolves.toBe(1)
    expect(b1.closeCalls).toBe(1)
    expect(a1.closeCalls + a2.closeCalls).toBe(0)
    expect(registry.getSessionInfo('a1')?.lastActivityAt).toBe(registry.getSessionInfo('a2')?.lastActivityAt)
  })

  it('getSessionInfo() does not count as activity', async () => {
    const { clock, registry, t0 } = setUp({ idleTimeoutMs: 1000 })
    const session = new FakeSession('s')
    registry.register('c', session)
    for (let i = 0; i < 5; i++) {
      clock.advance(300)
      expect(registry.getSessionInfo('s')?.lastActivityAt).toBe(t0)
    }
    await expect(registry.cleanupStale()).resolves.toBe(1)
    expect(session.closeCalls).toBe(1)
  })

  it('a running session is not closed as idle; once it stops running it is', async () => {
    const { clock, events, registry } = setUp({ idleTimeoutMs: 1000 })
    const session = new FakeSession('busy')
    session.running = true
    registry.register('c', session)
    clock.advance(5000)
    await expect(registry.cleanupStale()).resolves.toBe(0)
    expect(session.closeCalls).toBe(0)
    session.running = false
    await expect(registry.cleanupStale()).resolves.toBe(1)
    await until(() => events.length === 1)
    expect(events).toMatchObject([{ sessionId: 'busy', reason: 'idle' }])
  })

  it.each([
    [
      'throws',
      (s: FakeSession) => {
        s.isRunning = () => {
          throw new Error('cannot tell')
        }
      },
    ],
    [
      'is missing',
      (s: FakeSession) => {
        ;(s as { isRunning?: unknown }).isRunning = undefined
      },
    ],
    [
      'is not a function',
      (s: FakeSession) => {
        ;(s as { isRunning?: unknown }).isRunning = false
      },
    ],
  ] as const)('a session whose isRunning %s is not closed as idle', async (_name, prepare) => {
    const { clock, registry } = setUp({ idleTimeoutMs: 1000 })
    const session = new FakeSession('unsure')
    prepare(session)
    const control = new FakeSession('control')
    registry.register('c', session)
    registry.register('c', control)
    clock.advance(5000)
    await expect(registry.cleanupStale()).resolves.toBe(1)
    expect(control.closeCalls).toBe(1)
    expect(session.closeCalls).toBe(0)
    expect(registry.getSession('unsure')).toBe(session)
  })

  it('a plain handle without isRunning is not closed as idle', async () => {
    const { clock, registry } = setUp<NitySessionHandle>({ idleTimeoutMs: 1000 })
    let closed = 0
    const handle = {
      id: 'plain',
      close: () => {
        closed += 1
      },
      getHealth: () => ({ state: 'idle' as const, errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: 0 }),
    }
    registry.register('c', handle as unknown as NitySessionHandle)
    clock.advance(5000)
    await expect(registry.cleanupStale()).resolves.toBe(0)
    expect(closed).toBe(0)
  })

  it.each(['error', 'timedOut'] as const)(
    'a session both idle and stale (%s) is closed with reason cleanupStale',
    async (how) => {
      const { clock, events, registry } = setUp({ idleTimeoutMs: 1000 })
      registry.register('c', stale(new FakeSession('both'), how))
      clock.advance(5000)
      await expect(registry.cleanupStale()).resolves.toBe(1)
      await until(() => events.length === 1)
      expect(events).toMatchObject([{ sessionId: 'both', reason: 'cleanupStale' }])
      expect(registry.getMetrics().closesByReason.idle).toBe(0)
    },
  )

  it('getSessionInfo().lastActivityAt follows touches and lookups on the clock; registeredAt stays', () => {
    const { clock, registry, t0 } = setUp()
    registry.register('c', new FakeSession('s'))
    expect(registry.getSessionInfo('s')).toMatchObject({
      sessionId: 's',
      clientId: 'c',
      registeredAt: t0,
      lastActivityAt: t0,
    })
    clock.advance(500)
    registry.touch('s')
    expect(registry.getSessionInfo('s')).toMatchObject({ registeredAt: t0, lastActivityAt: t0 + 500 })
    clock.advance(250)
    registry.getSession('s')
    expect(registry.getSessionInfo('s')).toMatchObject({ registeredAt: t0, lastActivityAt: t0 + 750 })
    clock.advance(250)
    registry.getClientSessions('c')
    expect(registry.getSessionInfo('s')).toMatchObject({ registeredAt: t0, lastActivityAt: t0 + 1000 })
    expect(registry.list().sessions).toMatchObject([{ sessionId: 's', registeredAt: t0, lastActivityAt: t0 + 1000 }])
  })

  it('lastActivityAt never goes backwards, even when the clock does', async () => {
    const clock = new SettableClock()
    const registry = new NitySessionRegistry<FakeSession>({ clock, idleTimeoutMs: 1000 })
    registry.register('c', new FakeSession('s'))
    clock.time = 9_000
    expect(registry.touch('s')).toBe(true)
    expect(registry.getSessionInfo('s')?.lastActivityAt).toBe(9_000)
    clock.time = 6_000
    registry.touch('s')
    expect(registry.getSessionInfo('s')?.lastActivityAt).toBe(9_000)
    registry.getSession('s')
    registry.getClientSessions('c')
    expect(registry.getSessionInfo('s')?.lastActivityAt).toBe(9_000)
    clock.time = 9_500
    registry.touch('s')
    expect(registry.getSessionInfo('s')?.lastActivityAt).toBe(9_500)
  })
})

describe('close deadline', () => {
  it('a close() that never settles times out at exactly the default 10000 ms: hook gets timedOut and ERR_CLOSE_TIMEOUT, unregister rejects with it', async () => {
    const { clock, events, registry } = setUp()
    registry.register('c', new FakeSession('stuck', { kind: 'never' }))
    const unregistered = track(registry.unregister('stuck'))
    clock.advance(9999)
    await flush()
    expect(events).toEqual([])
    expect(unregistered.settled).toBe(false)

    clock.advance(1)
    await until(() => unregistered.settled && events.length === 1)
    expect(events).toHaveLength(1)
    const [event] = events
    expect(event).toMatchObject({
      sessionId: 'stuck',
      clientId: 'c',
      reason: 'unregister',
      timedOut: true,
      durationMs: 10_000,
    })
    expect(event.error).toBeInstanceOf(Error)
    expect(event.error).toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
    expect(unregistered.rejected).toBe(true)
    expect(unregistered.error).toBe(event.error)
  })

  it('a deadline further away than setTimeout can wait (2^31 - 1 ms) is reached in steps, neither early nor never', async () => {
    const clock = new ManualClock()
    // Node fires a timer asked for more than 2^31 - 1 ms after 1 ms: record what the registry asks for.
    const delays: number[] = []
    const recording = {
      now: () => clock.now(),
      setTimeout: (callback: () => void, ms: number) => {
        delays.push(ms)
        return clock.setTimeout(callback, ms)
      },
      clearTimeout: (handle: unknown) => clock.clearTimeout(handle),
    }
    const month = 30 * 24 * 60 * 60 * 1000
    const registry = new NitySessionRegistry<FakeSession>({ clock: recording, closeTimeoutMs: month })
    registry.register('c', new FakeSession('stuck', { kind: 'never' }))
    const unregistered = track(registry.unregister('stuck'))
    clock.advance(0x7fff_ffff)
    await flush()
    expect(unregistered.settled).toBe(false)
    clock.advance(month - 0x7fff_ffff - 1)
    await flush()
    expect(unregistered.settled).toBe(false)
    clock.advance(1)
    await until(() => unregistered.settled)
    expect(unregistered.error).toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
    expect(delays.length).toBeGreaterThanOrEqual(2)
    expect(Math.max(...delays)).toBeLessThanOrEqual(0x7fff_ffff)
  })

  it('closeTimeoutMs sets the deadline', async () => {
    const { clock, events, registry } = setUp({ closeTimeoutMs: 250 })
    registry.register('c', new FakeSession('stuck', { kind: 'never' }))
    const unregistered = registry.unregister('stuck')
    unregistered.catch(() => {})
    clock.advance(249)
    await flush()
    expect(events).toEqual([])
    clock.advance(1)
    await expect(unregistered).rejects.toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
    expect(events).toMatchObject([{ sessionId: 'stuck', timedOut: true, durationMs: 250 }])
  })

  it('the session is removed at once, not left half-closed while its close hangs', async () => {
    const { clock, registry } = setUp()
    const session = new FakeSession('stuck', { kind: 'never' })
    registry.register('c', session)
    registry.register('c', new FakeSession('other'))
    const unregistered = registry.unregister('stuck')
    unregistered.catch(() => {})
    expect(registry.getSession('stuck')).toBeUndefined()
    expect(registry.getSessionInfo('stuck')).toBeUndefined()
    expect(registry.touch('stuck')).toBe(false)
    expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { c: 1 } })
    expect(session.closeCalls).toBe(1)
    clock.advance(10_000)
    await expect(unregistered).rejects.toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
    expect(session.closeCalls).toBe(1)
    expect(registry.getStats().totalSessions).toBe(1)
  })

  it('cleanupClient resolves with the count only once the deadline has passed, reporting the hung close as timed out', async () => {
    const { clock, events, registry } = setUp({ closeTimeoutMs: 2000 })
    registry.register('leaving', new FakeSession('a'))
    registry.register('leaving', new FakeSession('stuck', { kind: 'never' }))
    registry.register('leaving', new FakeSession('b', { kind: 'sync' }))
    const cleaned = track(registry.cleanupClient('leaving'))
    expect(registry.getClientSessions('leaving')).toEqual([])
    clock.advance(1999)
    await flush()
    expect(cleaned.settled).toBe(false)
    expect(events.map((e) => e.sessionId).sort()).toEqual(['a', 'b'])
    clock.advance(1)
    await until(() => cleaned.settled)
    expect(cleaned.rejected).toBe(false)
    expect(cleaned.value).toBe(3)
    const timedOut = events.filter((e) => e.timedOut === true)
    expect(timedOut).toHaveLength(1)
    expect(timedOut[0]).toMatchObject({
      sessionId: 'stuck',
      reason: 'cleanupClient',
      error: { code: 'ERR_CLOSE_TIMEOUT' },
    })
  })

  it.each([
    ['cleanupStale', (r: NitySessionRegistry<FakeSession>) => r.cleanupStale()],
    ['shutdown', (r: NitySessionRegistry<FakeSession>) => r.closeAll()],
  ] as const)(
    'a hung close under %s times out with that reason and the call resolves with the count',
    async (reason, call) => {
      const { clock, events, registry } = setUp({ closeTimeoutMs: 1000 })
      registry.register('c', stale(new FakeSession('stuck', { kind: 'never' }), 'error'))
      const done = track(call(registry))
      await flush()
      clock.advance(999)
      await flush()
      expect(done.settled).toBe(false)
      clock.advance(1)
      await until(() => done.settled)
      expect(done.value).toBe(1)
      expect(events).toMatchObject([
        { sessionId: 'stuck', reason, timedOut: true, error: { code: 'ERR_CLOSE_TIMEOUT' } },
      ])
    },
  )

  it.each(['resolve', 'reject'] as const)(
    'a close that settles (%s) after the deadline is ignored: one event only',
    async (how) => {
      const { clock, events, registry } = setUp({ closeTimeoutMs: 1000 })
      const session = new FakeSession('late', { kind: 'manual' })
      registry.register('c', session)
      const unregistered = registry.unregister('late')
      unregistered.catch(() => {})
      clock.advance(1000)
      await expect(unregistered).rejects.toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
      expect(events).toHaveLength(1)
      if (how === 'resolve') session.settle!.resolve()
      else session.settle!.reject(new Error('too late'))
      await flush()
      clock.advance(60_000)
      await flush()
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({ timedOut: true })
      const metrics = registry.getMetrics()
      expect(metrics.closeTimeouts).toBe(1)
      expect(metrics.closeFailures).toBe(0)
      expect(metrics.sessionsClosed).toBe(1)
    },
  )

  it('a close that settles before the deadline is not reported as timed out later', async () => {
    const { clock, events, registry } = setUp()
    const session = new FakeSession('slow', { kind: 'manual' })
    registry.register('c', session)
    const unregistered = registry.unregister('slow')
    clock.advance(4000)
    session.settle!.resolve()
    await expect(unregistered).resolves.toBeUndefined()
    clock.advance(60_000)
    await flush()
    expect(events).toHaveLength(1)
    expect(events[0].timedOut).toBeUndefined()
    expect(events[0].error).toBeUndefined()
    expect(events[0].durationMs).toBe(4000)
    expect(registry.getMetrics().closeTimeouts).toBe(0)
  })

  it('getMetrics().closeTimeouts counts the closes given up on', async () => {
    const { clock, registry } = setUp({ closeTimeoutMs: 500 })
    expect(registry.getMetrics().closeTimeouts).toBe(0)
    registry.register('x', new FakeSession('one', { kind: 'never' }))
    registry.register('y', new FakeSession('two', { kind: 'never' }))
    registry.register('y', new FakeSession('three', { kind: 'never' }))
    registry.register('y', new FakeSession('fine'))
    registry.unregister('one').catch(() => {})
    const cleaned = registry.cleanupClient('y')
    await flush()
    expect(registry.getMetrics().closeTimeouts).toBe(0)
    clock.advance(500)
    await expect(cleaned).resolves.toBe(3)
    await flush()
    const metrics = registry.getMetrics()
    expect(metrics.closeTimeouts).toBe(3)
    expect(metrics.sessionsClosed).toBe(4)
  })
})

describe('the clock and option validation', () => {
  it('registeredAt, lastActivityAt and durationMs come from the injected clock', async () => {
    const { clock, events, registry, t0 } = setUp()
    const session = new FakeSession('s', { kind: 'manual' })
    clock.advance(42)
    registry.register('c', session)
    expect(registry.getSessionInfo('s')).toMatchObject({ registeredAt: t0 + 42, lastActivityAt: t0 + 42 })
    clock.advance(100)
    const unregistered = registry.unregister('s')
    clock.advance(1234)
    session.settle!.resolve()
    await unregistered
    await until(() => events.length === 1)
    expect(events[0].durationMs).toBe(1234)
    expect(registry.getMetrics().maxCloseDurationMs).toBe(1234)
    expect(registry.getMetrics().averageSessionLifetimeMs).toBe(100)
  })

  it.each<[string, () => unknown]>([
    [
      'throws',
      () => {
        throw new Error('broken clock')
      },
    ],
    ['returns a string', () => '12345'],
    ['returns undefined', () => undefined],
    ['returns an object', () => ({ valueOf: () => 1 })],
  ])('a clock whose now() %s falls back to the system clock without breaking anything', async (_name, now) => {
    const timers = new ManualClock()
    const clock: NitySessionClock = {
      now: now as () => number,
      setTimeout: (callback, ms) => timers.setTimeout(callback, ms),
      clearTimeout: (handle) => timers.clearTimeout(handle),
    }
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry<FakeSession>({
      clock,
      idleTimeoutMs: 60_000,
      onSessionClosed: (e) => events.push(e),
    })
    const before = Date.now()
    registry.register('c', new FakeSession('a'))
    registry.register('c', stale(new FakeSession('b'), 'error'))
    registry.register('d', new FakeSession('d'))
    const after = Date.now()
    const info = registry.getSessionInfo('a')!
    expect(typeof info.registeredAt).toBe('number')
    expect(info.registeredAt).toBeGreaterThanOrEqual(before - 1000)
    expect(info.registeredAt).toBeLessThanOrEqual(after + 1000)
    expect(info.lastActivityAt).toBeGreaterThanOrEqual(info.registeredAt)
    expect(registry.touch('a')).toBe(true)
    expect(registry.getSession('a')?.id).toBe('a')
    await expect(registry.cleanupStale()).resolves.toBe(1)
    await expect(registry.unregister('a')).resolves.toBeUndefined()
    await expect(registry.cleanupClient('d')).resolves.toBe(1)
    await until(() => events.length === 3)
    expect(events.map((e) => e.reason)).toEqual(['cleanupStale', 'unregister', 'cleanupClient'])
    for (const event of events) {
      expect(Number.isFinite(event.durationMs)).toBe(true)
      expect(event.durationMs).toBeGreaterThanOrEqual(0)
    }
    expect(registry.getStats().totalSessions).toBe(0)
    expect(Number.isFinite(registry.getMetrics().averageSessionLifetimeMs)).toBe(true)
  })

  it.each<[string, unknown]>([
    ['an empty object', {}],
    ['missing now', { setTimeout: () => 0, clearTimeout: () => {} }],
    ['missing setTimeout', { now: () => 0, clearTimeout: () => {} }],
    ['missing clearTimeout', { now: () => 0, setTimeout: () => 0 }],
    ['an object whose now is not a function', { now: 0, setTimeout: () => 0, clearTimeout: () => {} }],
    ['a number', 5],
    ['a string', 'clock'],
  ])('a clock option that is %s throws a TypeError with code ERR_INVALID_OPTIONS', (_name, clock) => {
    const error = thrown(() => new NitySessionRegistry({ clock: clock as NitySessionClock }))
    expect(error).toBeInstanceOf(TypeError)
    expect(error).toMatchObject({ code: 'ERR_INVALID_OPTIONS' })
  })

  const durationOptions = ['cleanupIntervalMs', 'idleTimeoutMs', 'closeTimeoutMs'] as const
  const badDurations: Array<[string, unknown]> = [
    ['0', 0],
    ['-1', -1],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ["'1000'", '1000'],
  ]
  it.each(durationOptions.flatMap((option) => badDurations.map(([label, value]) => [option, label, value] as const)))(
    '%s: %s throws a TypeError with code ERR_INVALID_OPTIONS naming the option',
    (option, _label, value) => {
      const clock = new ManualClock()
      const error = thrown(() => new NitySessionRegistry({ clock, [option]: value }))
      expect(error).toBeInstanceOf(TypeError)
      expect(error).toMatchObject({ code: 'ERR_INVALID_OPTIONS' })
      expect((error as Error).message).toContain(option)
      expect(clock.pending).toBe(0)
    },
  )
})

describe('workers and process exit (system clock)', () => {
  it.each([
    ['as soon as it is ready', 0],
    ['a little later, while its timers keep firing', 25],
  ] as const)(
    'a worker terminated (%s) while its auto cleanup runs and closes hang does not crash the parent, which can start a new worker',
    async (_name, delayMs) => {
      const worker = new Worker(fixture('auto-cleanup-worker.cjs'), { workerData: { mode: 'terminate' } })
      const errors: unknown[] = []
      worker.on('error', (e) => errors.push(e))
      const exited = new Promise<number>((resolve) => worker.once('exit', resolve))
      const ready = await firstMessage<{ error?: string; ready?: boolean; autoRuns: number }>(worker)
      expect(ready.error).toBeUndefined()
      expect(ready.ready).toBe(true)
      expect(ready.autoRuns).toBeGreaterThanOrEqual(2)
      if (delayMs > 0) await new Promise<void>((resolve) => setTimeout(resolve, delayMs))

      expect(await worker.terminate()).toBe(1)
      expect(await exited).toBe(1)
      expect(errors).toEqual([])

      // The parent's own addon instance still works, timers included.
      const clock = new ManualClock()
      const main = new NitySessionRegistry<FakeSession>({ clock, cleanupIntervalMs: 100 })
      const errored = stale(new FakeSession('after-terminate'), 'error')
      main.register('c', errored)
      clock.advance(100)
      await until(() => errored.closeCalls === 1)
      expect(errored.closeCalls).toBe(1)
      main.stopAutoCleanup()

      // A new worker loads the addon, auto-cleans, and exits by itself.
      const run = await runWorker<{
        error?: string
        reasons: string[]
        closeCalls: number
        stats: NitySessionRegistryStats
      }>(fixture('auto-cleanup-worker.cjs'), { mode: 'self-exit' })
      expect(run.error).toBeUndefined()
      expect(run.messages).toHaveLength(1)
      expect(run.messages[0].error).toBeUndefined()
      expect(run.messages[0].reasons).toEqual(['cleanupStale'])
      expect(run.messages[0].closeCalls).toBe(1)
      expect(run.messages[0].stats.totalSessions).toBe(11)
      expect(run.exitCode).toBe(0)
    },
    60_000,
  )

  it('terminating several auto-cleaning workers at once leaves the parent working', async () => {
    const workers = Array.from(
      { length: 3 },
      () => new Worker(fixture('auto-cleanup-worker.cjs'), { workerData: { mode: 'terminate' } }),
    )
    const errors: unknown[] = []
    for (const worker of workers) worker.on('error', (e) => errors.push(e))
    const ready = await Promise.all(workers.map((worker) => firstMessage<{ error?: string; ready?: boolean }>(worker)))
    expect(ready.map((m) => m.ready)).toEqual([true, true, true])
    expect(await Promise.all(workers.map((worker) => worker.terminate()))).toEqual([1, 1, 1])
    expect(errors).toEqual([])
    const main = new NitySessionRegistry<FakeSession>()
    main.register('c', new FakeSession('x'))
    await expect(main.cleanupClient('c')).resolves.toBe(1)
  }, 60_000)

  it.each(['plain', 'started', 'running'])(
    'a child process with a registry auto-cleaning every 10 ms and sessions registered exits by itself with code 0 (%s)',
    async (mode) => {
      const result = await runNode(fixture('exits-with-auto-cleanup.mjs'), [mode])
      expect(result.timedOut, `stderr: ${result.stderr}`).toBe(false)
      expect(result.signal, `stderr: ${result.stderr}`).toBeNull()
      expect(result.code, `stderr: ${result.stderr}`).toBe(0)
      const marker = result.stdout.split('\n').find((line) => line.startsWith('fixture-done '))
      expect(marker, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBeDefined()
      const report = JSON.parse(marker!.slice('fixture-done '.length))
      expect(report.mode).toBe(mode)
      expect(report.stats.totalSessions).toBe(10)
      expect(report.closeCalls).toBe(mode === 'running' ? 1 : 0)
    },
    60_000,
  )

  /** Runs a fixture to its end and reads its `after-await` line. */
  async function afterAwait(file: string, args: string[]): Promise<Record<string, unknown>> {
    const result = await runNode(fixture(file), args)
    expect(result.timedOut, `stderr: ${result.stderr}`).toBe(false)
    expect(result.signal, `stderr: ${result.stderr}`).toBeNull()
    expect(result.code, `stderr: ${result.stderr}`).toBe(0)
    const line = result.stdout.split('\n').find((l) => l.startsWith('after-await '))
    expect(line, `the code after the await never ran; stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBeDefined()
    return JSON.parse(line!.slice('after-await '.length)) as Record<string, unknown>
  }

  it.each([
    ['dispose', { value: 2 }],
    ['unregister', { code: 'ERR_CLOSE_TIMEOUT' }],
    ['cleanupClient', { value: 2 }],
    ['cleanupStale', { value: 1 }],
  ] as const)(
    'an ES module that awaits %s on a close that never settles runs what follows the await at the deadline, then exits with code 0',
    async (how, expected) => {
      const report = await afterAwait('awaits-hanging-close.mjs', [how, '300'])
      expect(report).toMatchObject({ how, ...expected })
      expect(report.elapsedMs).toBeGreaterThanOrEqual(298)
    },
    60_000,
  )

  it('a CommonJS script that awaits dispose() on a close that never settles sees it settle at the deadline', async () => {
    const report = await afterAwait('awaits-hanging-close.cjs', ['300'])
    expect(report).toMatchObject({ how: 'dispose', value: 1 })
    expect(report.elapsedMs).toBeGreaterThanOrEqual(298)
  }, 60_000)

  it('once the awaited close has settled, nothing keeps the process alive until the (one-minute) deadline', async () => {
    const started = performance.now()
    const report = await afterAwait('awaits-hanging-close.mjs', ['unregister', '60000', 'slow'])
    expect(report).toMatchObject({ how: 'unregister' })
    expect(report).not.toHaveProperty('code')
    // runNode gives up at 20 s; the deadline is a minute away.
    expect(performance.now() - started).toBeLessThan(20_000)
  }, 60_000)
})
