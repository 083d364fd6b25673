// Cluster mode: closing sessions wherever they live. `cluster.unregister`
// and `cluster.cleanupClient` have the owning node run the session's
// close() exactly once, with close reason 'remote', however many nodes ask at
// the same time.

import { describe, expect, it } from 'vitest'
import { eventually, ids, startFleet, redisPerTest } from '../helpers/cluster-nodes'
import type { RedisServer } from '../helpers/redis'

const TEST_TIMEOUT_MS = 60_000

let redis: RedisServer

redisPerTest((server) => {
  redis = server
})

describe('cluster.unregister', () => {
  it(
    "closes a session on another node, once, with reason 'remote', and resolves true",
    async () => {
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'rc' })
      await a.call('register', 'client-1', 'remote-me')
      await a.call('register', 'client-1', 'keep-me')
      await a.call('flush')

      await expect(b.call('clusterUnregister', 'remote-me')).resolves.toBe(true)

      // Closed on its node, removed there, and nothing else touched.
      expect(await a.call('closeCalls')).toEqual({ 'remote-me': 1 })
      expect(await a.call('closeEvents')).toEqual([{ sessionId: 'remote-me', clientId: 'client-1', reason: 'remote' }])
      expect(await a.call('getSession', 'remote-me')).toBeUndefined()
      expect(await a.call('getSession', 'keep-me')).toBe('keep-me')
      await eventually(
        async () => {
          expect(await b.call('clusterGetSession', 'remote-me')).toBeUndefined()
          expect(ids(await b.call('clusterGetClientSessions', 'client-1'))).toEqual(['keep-me'])
        },
        { what: 'the closed session left the directory' },
      )

      // Asking again, or for an id nobody holds: false, and no second close.
      await expect(b.call('clusterUnregister', 'remote-me')).resolves.toBe(false)
      await expect(b.call('clusterUnregister', 'never-registered')).resolves.toBe(false)
      expect(await a.call('closeCalls')).toEqual({ 'remote-me': 1 })
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'two nodes racing cluster.unregister of one session on a third: close() runs once, exactly one resolves true',
    async () => {
      const [a, b, c] = await startFleet(redis.url, ['node-a', 'node-b', 'node-c'], { namespace: 'rc' })
      const targets = Array.from({ length: 6 }, (_, i) => `race-${i}`)
      // A close that takes a while, so that the second request arrives while
      // the first close is still in flight.
      for (const id of targets) await c.call('register', 'client-r', id, { closeDelayMs: 300 })
      await c.call('flush')

      const results = await Promise.all(
        targets.map((id) => Promise.all([a.call('clusterUnregister', id), b.call('clusterUnregister', id)])),
      )
      for (const [index, pair] of results.entries()) {
        expect([...pair].sort(), `results for ${targets[index]}`).toEqual([false, true])
      }

      const calls = await c.call('closeCalls')
      expect(calls).toEqual(Object.fromEntries(targets.map((id) => [id, 1])))
      const events = await c.call('closeEvents')
      expect(events).toHaveLength(targets.length)
      expect(new Set(events.map((e) => e.sessionId))).toEqual(new Set(targets))
      expect(events.every((e) => e.reason === 'remote' && e.clientId === 'client-r')).toBe(true)
      expect(await c.call('localStats')).toEqual({ totalSessions: 0, activeClients: 0, sessionsByClient: {} })
      await eventually(async () => expect(await a.call('clusterGetClientSessions', 'client-r')).toEqual([]), {
        what: 'the closed sessions left the directory',
      })
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "a remote unregister racing the owner's own unregister closes the session once",
    async () => {
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'rc' })
      const targets = Array.from({ length: 6 }, (_, i) => `both-${i}`)
      for (const id of targets) await a.call('register', 'client-q', id, { closeDelayMs: 200 })
      await a.call('flush')

      const results = await Promise.all(
        targets.map((id) => Promise.all([a.call('unregister', id), b.call('clusterUnregister', id)])),
      )
      // Whoever got there first: the remote call says whether it closed it.
      for (const [, remote] of results) expect(typeof remote).toBe('boolean')

      expect(await a.call('closeCalls')).toEqual(Object.fromEntries(targets.map((id) => [id, 1])))
      const events = await a.call('closeEvents')
      expect(events).toHaveLength(targets.length)
      for (const event of events) expect(['unregister', 'remote']).toContain(event.reason)
      // A session the remote call closed was closed by it, not by a no-op.
      for (const [index, [, remote]] of results.entries()) {
        const event = events.find((e) => e.sessionId === targets[index])
        if (event?.reason === 'remote') expect(remote, `cluster.unregister of ${targets[index]}`).toBe(true)
      }
      await a.call('flush')
      expect(await b.call('clusterGetClientSessions', 'client-q')).toEqual([])
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'rejects with ERR_CLUSTER_TIMEOUT when the owning node does not answer within requestTimeoutMs',
    async () => {
      const requestTimeoutMs = 1_000
      // A long lease: the stopped node stays a live member of the fleet for
      // the whole test, it just does not answer.
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], {
        namespace: 'rc-timeout',
        leaseMs: 30_000,
        requestTimeoutMs,
      })
      await b.call('register', 'client-t', 'silent')
      await b.call('flush')

      b.kill('SIGSTOP')
      try {
        const started = Date.now()
        const reply = await a.attempt('clusterUnregister', 'silent')
        const elapsed = Date.now() - started
        expect(reply).toMatchObject({ ok: false, error: { code: 'ERR_CLUSTER_TIMEOUT' } })
        // Not before the timeout; the upper bound is loose (slow machine).
        expect(elapsed).toBeGreaterThanOrEqual(requestTimeoutMs - 50)
        expect(elapsed).toBeLessThan(requestTimeoutMs + 10_000)
      } finally {
        b.kill('SIGCONT')
      }
      // The fleet carries on. The request that timed out may still reach B
      // once it runs again, and close the session (once); either way the
      // directory ends up agreeing with what B holds.
      await eventually(
        async () => {
          const held = await b.call('getSession', 'silent')
          await b.call('flush')
          const record = await a.call('clusterGetSession', 'silent')
          if (held === undefined) expect(record).toBeUndefined()
          else expect(record).toMatchObject({ nodeId: 'node-b' })
          expect(await b.call('getSession', 'silent')).toBe(held)
        },
        { what: "the directory agreeing with B's sessions" },
      )
      expect((await b.call('closeCalls')).silent ?? 0).toBeLessThanOrEqual(1)
      expect(await a.call('clusterGetStats')).toMatchObject({ nodes: 2 })
      expect(await a.call('nodeDownEvents')).toEqual([])
    },
    TEST_TIMEOUT_MS,
  )
})

describe('cluster.cleanupClient', () => {
  it(
    "closes the client's sessions on every node (reason 'remote' on the others) and resolves with the total",
    async () => {
      const [a, b, c] = await startFleet(redis.url, ['node-a', 'node-b', 'node-c'], { namespace: 'rc' })
      await a.call('register', 'k', 'k-a1')
      await a.call('register', 'k', 'k-a2')
      await a.call('register', 'other', 'o-a1')
      await b.call('register', 'k', 'k-b1')
      await b.call('register', 'k', 'k-b2')
      await b.call('register', 'k', 'k-b3')
      await c.call('register', 'k', 'k-c1')
      await c.call('register', 'other', 'o-c1')
      await Promise.all([a.call('flush'), b.call('flush'), c.call('flush')])

      await expect(a.call('clusterCleanupClient', 'k')).resolves.toBe(6)

      expect(await a.call('closeCalls')).toEqual({ 'k-a1': 1, 'k-a2': 1 })
      expect(await b.call('closeCalls')).toEqual({ 'k-b1': 1, 'k-b2': 1, 'k-b3': 1 })
      expect(await c.call('closeCalls')).toEqual({ 'k-c1': 1 })
      for (const node of [b, c]) {
        const events = await node.call('closeEvents')
        expect(events.every((e) => e.reason === 'remote' && e.clientId === 'k')).toBe(true)
      }
      // On the asking node itself the reason may be its own or 'remote'.
      for (const event of await a.call('closeEvents')) expect(['remote', 'cleanupClient']).toContain(event.reason)

      for (const node of [a, b, c]) {
        expect(await node.call('getClientSessions', 'k')).toEqual([])
      }
      expect(await a.call('getClientSessions', 'other')).toEqual(['o-a1'])
      expect(await c.call('getClientSessions', 'other')).toEqual(['o-c1'])
      await eventually(
        async () => {
          for (const viewer of [a, b, c]) {
            expect(await viewer.call('clusterGetClientSessions', 'k')).toEqual([])
            expect(ids(await viewer.call('clusterGetClientSessions', 'other')).sort()).toEqual(['o-a1', 'o-c1'])
          }
        },
        { what: "the directory lost client k's sessions and kept the others" },
      )

      await expect(b.call('clusterCleanupClient', 'k')).resolves.toBe(0)
      await expect(b.call('clusterCleanupClient', 'nobody')).resolves.toBe(0)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'two nodes racing cluster.cleanupClient of one client: each session closed once, the totals add up',
    async () => {
      const [a, b, c] = await startFleet(redis.url, ['node-a', 'node-b', 'node-c'], { namespace: 'rc' })
      const expected: Record<string, Record<string, number>> = { 'node-a': {}, 'node-b': {}, 'node-c': {} }
      for (const node of [a, b, c]) {
        for (let i = 0; i < 3; i++) {
          const id = `z-${node.nodeId}-${i}`
          await node.call('register', 'z', id, { closeDelayMs: 100 })
          expected[node.nodeId]![id] = 1
        }
        await node.call('flush')
      }

      const [fromA, fromB] = await Promise.all([
        a.call('clusterCleanupClient', 'z'),
        b.call('clusterCleanupClient', 'z'),
      ])
      expect(fromA + fromB).toBe(9)

      for (const node of [a, b, c]) {
        expect(await node.call('closeCalls'), `close() calls on ${node.nodeId}`).toEqual(expected[node.nodeId])
        expect(await node.call('closeEvents')).toHaveLength(3)
      }
      await eventually(async () => expect(await c.call('clusterGetClientSessions', 'z')).toEqual([]), {
        what: "the directory lost client z's sessions",
      })
    },
    TEST_TIMEOUT_MS,
  )
})
