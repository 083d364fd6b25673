import { describe, expect, it } from 'vitest'
import { performance } from 'node:perf_hooks'
import { NitySessionRegistry } from 'nity-session-registry'
import { FakeSession } from './helpers/sessions'

/** Keeps the thread busy for `ms`, as slow user code would. */
function busy(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // spin
  }
}

/**
 * Bulk work that takes far longer than a slice (about 3 ms) must let the
 * event loop run in between: an immediate queued before the call runs while
 * the call is still working, not only after it finished.
 */
describe('bulk calls yield to the event loop', () => {
  it('cleanupStale asks for health in slices', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: string[] = []
    for (let i = 0; i < 200; i++) {
      const session = new FakeSession(`s${i}`)
      session.getHealth = () => {
        events.push('health')
        busy(0.2)
        return { state: i % 2 === 0 ? 'error' : 'idle', errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: 0 }
      }
      registry.register('c', session)
    }
    setImmediate(() => events.push('immediate'))
    const removed = await registry.cleanupStale()
    expect(removed).toBe(100)
    const immediate = events.indexOf('immediate')
    expect(immediate).toBeGreaterThan(0)
    expect(events.slice(immediate + 1)).toContain('health')
    expect(registry.getStats().totalSessions).toBe(100)
  })

  it('cleanupClient starts its closes in slices', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const events: string[] = []
    const sessions: FakeSession[] = []
    for (let i = 0; i < 200; i++) {
      const session = new FakeSession(`s${i}`, {
        kind: 'custom',
        run: () => {
          events.push('close')
          busy(0.2)
        },
      })
      sessions.push(session)
      registry.register('leaving', session)
    }
    setImmediate(() => events.push('immediate'))
    const removed = await registry.cleanupClient('leaving')
    expect(removed).toBe(200)
    // Every session left the registry at once, though closes ran later.
    expect(sessions.every((s) => s.closeCalls === 1)).toBe(true)
    const immediate = events.indexOf('immediate')
    expect(immediate).toBeGreaterThan(0)
    expect(events.slice(immediate + 1)).toContain('close')
  })

  it('a cleanupClient still in progress has already removed every session', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    for (let i = 0; i < 100; i++) {
      registry.register('leaving', new FakeSession(`s${i}`, { kind: 'custom', run: () => busy(0.2) }))
    }
    registry.register('staying', new FakeSession('kept'))
    const done = registry.cleanupClient('leaving')
    expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { staying: 1 } })
    expect(registry.getClientSessions('leaving')).toEqual([])
    await expect(done).resolves.toBe(100)
  })

  it('sessions registered while a slow scan runs are left for the next scan', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    for (let i = 0; i < 100; i++) {
      const session = new FakeSession(`s${i}`)
      session.getHealth = () => {
        busy(0.2)
        return { state: 'idle', errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: 0 }
      }
      registry.register('c', session)
    }
    const late = new FakeSession('late')
    late.health = { ...late.health, state: 'error' }
    setImmediate(() => registry.register('c', late))
    await expect(registry.cleanupStale()).resolves.toBe(0)
    expect(registry.getSession('late')).toBe(late)
    await expect(registry.cleanupStale()).resolves.toBe(1)
  })
})
