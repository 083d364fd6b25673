import { describe, expect, it } from 'vitest'
import { NitySessionRegistry } from 'nity-session-registry'
import { FakeSession, flush } from './helpers/sessions'

describe('unregister', () => {
  it('removes the session from its client, closes it, and resolves after close settled', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a', { kind: 'manual' })
    const b = new FakeSession('b')
    registry.register('c1', a)
    registry.register('c1', b)
    let resolved = false
    const done = registry.unregister('a').then(() => {
      resolved = true
    })
    expect(a.closeCalls).toBe(1)
    expect(registry.getSession('a')).toBeUndefined()
    expect(registry.getClientSessions('c1')).toEqual([b])
    await flush()
    expect(resolved).toBe(false)
    a.settle!.resolve()
    await done
    expect(resolved).toBe(true)
  })

  it('drops the client entry when its last session goes', async () => {
    const registry = new NitySessionRegistry()
    registry.register('c1', new FakeSession('a'))
    registry.register('c2', new FakeSession('b'))
    await registry.unregister('a')
    expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { c2: 1 } })
    expect(registry.getClientSessions('c1')).toEqual([])
  })

  it('resolves quietly for an unknown id', async () => {
    const registry = new NitySessionRegistry()
    registry.register('c1', new FakeSession('a'))
    await expect(registry.unregister('nope')).resolves.toBeUndefined()
    await expect(registry.unregister('')).resolves.toBeUndefined()
    expect(registry.getStats().totalSessions).toBe(1)
  })

  it('handles a close() that returns nothing', async () => {
    const registry = new NitySessionRegistry()
    const a = new FakeSession('a', { kind: 'sync' })
    registry.register('c1', a)
    await expect(registry.unregister('a')).resolves.toBeUndefined()
    expect(a.closeCalls).toBe(1)
  })

  it('calls close() as a method of the handle', async () => {
    const registry = new NitySessionRegistry()
    const seen: unknown[] = []
    const handle = new FakeSession('a')
    handle.close = function (this: unknown) {
      seen.push(this)
    }
    registry.register('c1', handle)
    await registry.unregister('a')
    expect(seen).toEqual([handle])
    expect(seen[0]).toBe(handle)
  })

  it('rejects a non-string id with a TypeError (a rejected promise, not a throw)', async () => {
    const registry = new NitySessionRegistry()
    const promise = registry.unregister(5 as never)
    await expect(promise).rejects.toBeInstanceOf(TypeError)
    await expect(promise).rejects.toMatchObject({ code: 'ERR_INVALID_SESSION_ID' })
  })

  it('lets the id be registered again once removed', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    registry.register('c1', new FakeSession('a'))
    await registry.unregister('a')
    const again = new FakeSession('a')
    registry.register('c2', again)
    expect(registry.getSession('a')).toBe(again)
  })
})

describe('cleanupClient', () => {
  it('closes all of the client sessions and resolves with how many were removed', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const mine = ['a', 'b', 'c'].map((id) => new FakeSession(id))
    const other = new FakeSession('x')
    for (const s of mine) registry.register('client-abc', s)
    registry.register('other', other)
    await expect(registry.cleanupClient('client-abc')).resolves.toBe(3)
    expect(mine.map((s) => s.closeCalls)).toEqual([1, 1, 1])
    expect(other.closeCalls).toBe(0)
    expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { other: 1 } })
  })

  it('starts every close at once rather than one after another', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const sessions = ['a', 'b', 'c'].map((id) => new FakeSession(id, { kind: 'manual' }))
    for (const s of sessions) registry.register('c1', s)
    let count: number | undefined
    const done = registry.cleanupClient('c1').then((n) => {
      count = n
    })
    // All three closes are in flight before any of them settles.
    expect(sessions.map((s) => s.closeCalls)).toEqual([1, 1, 1])
    sessions[2]!.settle!.resolve()
    sessions[0]!.settle!.resolve()
    await flush()
    expect(count).toBeUndefined()
    sessions[1]!.settle!.resolve()
    await done
    expect(count).toBe(3)
  })

  it('resolves with 0 for an unknown client', async () => {
    await expect(new NitySessionRegistry().cleanupClient('nobody')).resolves.toBe(0)
  })

  it('rejects a non-string client id with a TypeError', async () => {
    await expect(new NitySessionRegistry().cleanupClient(null as never)).rejects.toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_CLIENT_ID',
    })
  })

  it('a racing second cleanupClient finds nothing more and closes nothing twice', async () => {
    const registry = new NitySessionRegistry<FakeSession>()
    const a = new FakeSession('a', { kind: 'manual' })
    registry.register('c1', a)
    const first = registry.cleanupClient('c1')
    await expect(registry.cleanupClient('c1')).resolves.toBe(0)
    expect(a.closeCalls).toBe(1)
    a.settle!.resolve()
    await expect(first).resolves.toBe(1)
  })
})
