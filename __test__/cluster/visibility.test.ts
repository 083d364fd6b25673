// Cluster mode: what one node registers locally, every node of the namespace
// sees through `registry.cluster`, once the change is published (in the
// background, or at once with `flush()`). The documented calls stay local.

import { describe, expect, it } from 'vitest'
import { eventually, ids, LEASE_MS, sleep, startFleet, withoutZeros, redisPerTest } from '../helpers/cluster-nodes'
import type { RedisServer } from '../helpers/redis'

const TEST_TIMEOUT_MS = 60_000

let redis: RedisServer

redisPerTest((server) => {
  redis = server
})

describe('a local register is seen by every node', () => {
  it(
    "a session registered locally on A is seen by B's cluster.getSession after A's flush()",
    async () => {
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'vis' })
      expect(a.nodeId).toBe('node-a')
      expect(b.nodeId).toBe('node-b')

      const before = Date.now()
      await a.call('register', 'client-1', 's-1')
      const after = Date.now()
      await a.call('flush')

      const seenByB = await b.call('clusterGetSession', 's-1')
      expect(seenByB).toEqual({
        sessionId: 's-1',
        clientId: 'client-1',
        nodeId: 'node-a',
        registeredAt: expect.any(Number),
      })
      // On the registering node's clock, which here is the system clock.
      expect(seenByB!.registeredAt).toBeGreaterThanOrEqual(before)
      expect(seenByB!.registeredAt).toBeLessThanOrEqual(after)
      // A sees the same record through its own cluster view.
      expect(await a.call('clusterGetSession', 's-1')).toEqual(seenByB)

      // The documented calls stay local: B's registry does not hold it.
      expect(await b.call('getSession', 's-1')).toBeUndefined()
      expect(await b.call('localStats')).toEqual({ totalSessions: 0, activeClients: 0, sessionsByClient: {} })
      expect(await a.call('getSession', 's-1')).toBe('s-1')

      // An id nobody registered.
      expect(await b.call('clusterGetSession', 'nobody')).toBeUndefined()
      // flush() left nothing waiting.
      expect((await a.call('diagnostics')).pendingChanges).toBe(0)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'registrations and removals are published in the background, without flush()',
    async () => {
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'vis' })

      await a.call('register', 'client-1', 'bg-1')
      await a.call('register', 'client-2', 'bg-2')
      await eventually(
        async () => {
          expect(await b.call('clusterGetSession', 'bg-1')).toMatchObject({ clientId: 'client-1', nodeId: 'node-a' })
          expect(await b.call('clusterGetSession', 'bg-2')).toMatchObject({ clientId: 'client-2', nodeId: 'node-a' })
        },
        { what: "B sees A's sessions without a flush" },
      )

      await a.call('unregister', 'bg-1')
      expect((await a.call('closeCalls'))['bg-1']).toBe(1)
      await a.call('cleanupClient', 'client-2')
      await eventually(
        async () => {
          expect(await b.call('clusterGetSession', 'bg-1')).toBeUndefined()
          expect(await b.call('clusterGetSession', 'bg-2')).toBeUndefined()
        },
        { what: "B sees A's removals without a flush" },
      )
      await eventually(async () => expect((await a.call('diagnostics')).pendingChanges).toBe(0), {
        what: 'nothing left to publish',
      })
      // Local removals keep their local reasons.
      expect((await a.call('closeEvents')).map((e) => [e.sessionId, e.reason])).toEqual([
        ['bg-1', 'unregister'],
        ['bg-2', 'cleanupClient'],
      ])
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'flush() makes removals visible too, and the counts stay exact over many changes',
    async () => {
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'vis' })
      for (let i = 0; i < 30; i++) await a.call('register', `client-${i % 3}`, `many-${i}`)
      await a.call('flush')
      expect(await b.call('clusterGetStats')).toMatchObject({
        totalSessions: 30,
        activeClients: 3,
        sessionsByClient: { 'client-0': 10, 'client-1': 10, 'client-2': 10 },
      })

      await a.call('unregister', 'many-0')
      await a.call('unregister', 'many-4')
      expect(await a.call('cleanupClient', 'client-2')).toBe(10)
      await a.call('flush')

      const stats = await b.call('clusterGetStats')
      expect(stats).toMatchObject({
        totalSessions: 18,
        activeClients: 2,
        sessionsByClient: { 'client-0': 9, 'client-1': 9 },
      })
      expect(stats.sessionsByClient).not.toHaveProperty('client-2')
      expect(withoutZeros(stats.sessionsByNode)).toEqual({ 'node-a': 18 })
      expect(await b.call('clusterGetSession', 'many-0')).toBeUndefined()
      expect(await b.call('clusterGetSession', 'many-2')).toBeUndefined()
      expect(await b.call('clusterGetSession', 'many-3')).toMatchObject({ clientId: 'client-0', nodeId: 'node-a' })
      expect(await b.call('clusterGetClientSessions', 'client-2')).toEqual([])
      expect((await a.call('diagnostics')).pendingChanges).toBe(0)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "getClientSessions lists the client's sessions from every live node, oldest first",
    async () => {
      const [a, b, c] = await startFleet(redis.url, ['node-a', 'node-b', 'node-c'], { namespace: 'vis' })

      // Registered one after another, on alternating nodes, each published
      // before the next is made, so their registration times are in order.
      const order: Array<[typeof a, string]> = [
        [a, 'first'],
        [b, 'second'],
        [a, 'third'],
        [c, 'fourth'],
      ]
      for (const [node, id] of order) {
        await node.call('register', 'shared-client', id)
        await node.call('flush')
        await sleep(5)
      }
      await b.call('register', 'other-client', 'not-mine')
      await b.call('flush')

      for (const viewer of [a, b, c]) {
        const sessions = await viewer.call('clusterGetClientSessions', 'shared-client')
        expect(ids(sessions)).toEqual(['first', 'second', 'third', 'fourth'])
        expect(sessions.map((s) => s.nodeId)).toEqual(['node-a', 'node-b', 'node-a', 'node-c'])
        expect(sessions.every((s) => s.clientId === 'shared-client')).toBe(true)
        const times = sessions.map((s) => s.registeredAt)
        expect([...times].sort((x, y) => x - y)).toEqual(times)
        expect(await viewer.call('clusterGetClientSessions', 'unknown-client')).toEqual([])
      }
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'getStats() and nodes() count over the live nodes',
    async () => {
      const started = Date.now()
      const [a, b, c] = await startFleet(redis.url, ['node-a', 'node-b', 'node-c'], { namespace: 'vis' })
      await a.call('register', 'x', 'a-1')
      await a.call('register', 'x', 'a-2')
      await a.call('register', 'y', 'a-3')
      await b.call('register', 'x', 'b-1')
      await Promise.all([a.call('flush'), b.call('flush'), c.call('flush')])

      for (const viewer of [a, b, c]) {
        const stats = await viewer.call('clusterGetStats')
        expect(stats).toMatchObject({
          totalSessions: 4,
          activeClients: 2,
          sessionsByClient: { x: 3, y: 1 },
          nodes: 3,
        })
        expect(Object.keys(stats.sessionsByClient).sort()).toEqual(['x', 'y'])
        // A live node without sessions may be listed with 0, or left out.
        expect(withoutZeros(stats.sessionsByNode)).toEqual({ 'node-a': 3, 'node-b': 1 })

        const nodes = [...(await viewer.call('clusterNodes'))].sort((p, q) => p.nodeId.localeCompare(q.nodeId))
        expect(nodes).toEqual([
          { nodeId: 'node-a', sessions: 3, startedAt: expect.any(Number), lastSeenAt: expect.any(Number) },
          { nodeId: 'node-b', sessions: 1, startedAt: expect.any(Number), lastSeenAt: expect.any(Number) },
          { nodeId: 'node-c', sessions: 0, startedAt: expect.any(Number), lastSeenAt: expect.any(Number) },
        ])
        const now = Date.now()
        for (const node of nodes) {
          // Loose bounds: started during this test, seen recently (a live
          // node renews its lease well within LEASE_MS; the machine is slow).
          expect(node.startedAt).toBeGreaterThanOrEqual(started - 1_000)
          expect(node.startedAt).toBeLessThanOrEqual(now + 1_000)
          expect(node.lastSeenAt).toBeGreaterThanOrEqual(node.startedAt)
          expect(node.lastSeenAt).toBeGreaterThanOrEqual(now - (LEASE_MS + 10_000))
          expect(node.lastSeenAt).toBeLessThanOrEqual(now + 1_000)
        }
      }
    },
    TEST_TIMEOUT_MS,
  )
})
