import { describe, expect, it } from 'vitest'
import { NitySessionRegistry, type NitySessionClosedEvent } from 'nity-session-registry'
import { FakeSession, stale } from './helpers/sessions'

describe('cleanupStale', () => {
  it('closes and removes timed-out and errored sessions, resolving with the count', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const healthy = new FakeSession('healthy')
    const busy = new FakeSession('busy')
    busy.health = { ...busy.health, state: 'active' }
    const timedOut = stale(new FakeSession('timed-out'), 'timedOut')
    const errored = stale(new FakeSession('errored'), 'error')
    for (const s of [healthy, busy, timedOut, errored]) registry.register('c1', s)
    await expect(registry.cleanupStale()).resolves.toBe(2)
    expect(timedOut.closeCalls).toBe(1)
    expect(errored.closeCalls).toBe(1)
    expect(healthy.closeCalls + busy.closeCalls).toBe(0)
    expect(registry.getClientSessions('c1')).toEqual([healthy, busy])
  })

  it('counts a getHealth() that throws as an error state', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const broken = new FakeSession('broken')
    broken.healthError = new Error('cannot tell')
    registry.register('c1', broken)
    registry.register('c1', new FakeSession('fine'))
    await expect(registry.cleanupStale()).resolves.toBe(1)
    expect(broken.closeCalls).toBe(1)
    expect(registry.getSession('broken')).toBeUndefined()
  })

  it('treats a getHealth() answer that is not an object as an error state', async () => {
    const registry = new NitySessionRegistry()
    const odd = new FakeSession('odd')
    odd.getHealth = () => undefined as never
    registry.register('c1', odd)
    await expect(registry.cleanupStale()).resolves.toBe(1)
  })

  it('calls getHealth() as a method and only counts isTimedOut === true', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const truthy = new FakeSession('truthy')
    truthy.health = { ...truthy.health, isTimedOut: 1 as never }
    registry.register('c1', truthy)
    await expect(registry.cleanupStale()).resolves.toBe(0)
  })

  it('leaves sessions without getHealth alone', async () => {
    const registry = new NitySessionRegistry()
    registry.register('c1', { id: 'minimal', close: () => {} } as never)
    await expect(registry.cleanupStale()).resolves.toBe(0)
    expect(registry.getStats().totalSessions).toBe(1)
  })

  it('drops clients emptied by the cleanup and keeps stats exact', async () => {
    const registry = new NitySessionRegistry()
    registry.register('gone', stale(new FakeSession('a'), 'error'))
    registry.register('kept', new FakeSession('b'))
    registry.register('kept', stale(new FakeSession('c'), 'timedOut'))
    await registry.cleanupStale()
    expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { kept: 1 } })
  })

  it('resolves with 0 on an empty registry', async () => {
    await expect(new NitySessionRegistry().cleanupStale()).resolves.toBe(0)
  })

  it('reports its closes with reason cleanupStale', async () => {
    const events: NitySessionClosedEvent[] = []
    const registry = new NitySessionRegistry({ onSessionClosed: (e) => events.push(e) })
    registry.register('c1', stale(new FakeSession('a'), 'error'))
    await registry.cleanupStale()
    expect(events).toEqual([{ sessionId: 'a', clientId: 'c1', reason: 'cleanupStale', durationMs: expect.any(Number) }])
  })
})
