// Cluster mode: `cluster.register` claims a session id fleet-wide in one
// atomic step before registering it locally. Racing nodes cannot both win an
// id, nor together pass the fleet-wide `maxSessionsPerClient`.

import { describe, expect, it } from 'vitest'
import {
  type ClusterNodeProcess,
  eventually,
  ids,
  LEASE_MS,
  REAP_SLACK_MS,
  type Reply,
  startFleet,
  redisPerTest,
} from '../helpers/cluster-nodes'
import type { RedisServer } from '../helpers/redis'

const TEST_TIMEOUT_MS = 60_000

let redis: RedisServer

redisPerTest((server) => {
  redis = server
})

function codeOf(reply: Reply<unknown>): string | undefined {
  return reply.ok ? undefined : reply.error.code
}

describe('cluster.register', () => {
  it(
    'claims the id fleet-wide and registers the session locally',
    async () => {
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'strict' })
      await expect(a.call('clusterRegister', 'client-1', 'claimed')).resolves.toBeUndefined()
      expect(await a.call('getSession', 'claimed')).toBe('claimed')
      expect(await a.call('localStats')).toEqual({
        totalSessions: 1,
        activeClients: 1,
        sessionsByClient: { 'client-1': 1 },
      })
      await a.call('flush')
      expect(await b.call('clusterGetSession', 'claimed')).toMatchObject({
        sessionId: 'claimed',
        clientId: 'client-1',
        nodeId: 'node-a',
      })

      // A claimed session is an ordinary local one: the documented calls
      // close it, and its removal is published.
      await a.call('unregister', 'claimed')
      expect(await a.call('closeCalls')).toEqual({ claimed: 1 })
      await a.call('flush')
      expect(await b.call('clusterGetSession', 'claimed')).toBeUndefined()

      // Its id is free again.
      await expect(b.call('clusterRegister', 'client-2', 'claimed')).resolves.toBeUndefined()
      await b.call('flush')
      expect(await a.call('clusterGetSession', 'claimed')).toMatchObject({ clientId: 'client-2', nodeId: 'node-b' })
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'rejects with ERR_SESSION_ALREADY_REGISTERED when a live node holds the id, and registers nothing',
    async () => {
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'strict' })
      await a.call('register', 'client-1', 'taken')
      await a.call('flush')

      for (const clientId of ['client-1', 'client-2']) {
        const reply = await b.attempt('clusterRegister', clientId, 'taken')
        expect(reply).toMatchObject({ ok: false, error: { code: 'ERR_SESSION_ALREADY_REGISTERED' } })
      }
      // Also on the holding node itself.
      expect(codeOf(await a.attempt('clusterRegister', 'client-3', 'taken'))).toBe('ERR_SESSION_ALREADY_REGISTERED')

      expect(await b.call('getSession', 'taken')).toBeUndefined()
      expect(await b.call('localStats')).toMatchObject({ totalSessions: 0 })
      expect(await b.call('closeCalls')).toEqual({})
      // The holder's session is untouched.
      expect(await a.call('closeCalls')).toEqual({})
      expect(await a.call('getClientSessions', 'client-1')).toEqual(['taken'])
      expect(await b.call('clusterGetSession', 'taken')).toMatchObject({ clientId: 'client-1', nodeId: 'node-a' })
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'racing cluster.register of the same ids on three nodes: exactly one node wins each id',
    async () => {
      const nodes = await startFleet(redis.url, ['node-a', 'node-b', 'node-c'], { namespace: 'strict' })
      const targets = Array.from({ length: 12 }, (_, i) => `dup-${i}`)

      const replies = await Promise.all(
        targets.map((id) => Promise.all(nodes.map((node) => node.attempt('clusterRegister', `client-${id}`, id)))),
      )

      const winnerOf = new Map<string, ClusterNodeProcess>()
      for (const [index, perNode] of replies.entries()) {
        const id = targets[index]!
        const winners = perNode.flatMap((reply, n) => (reply.ok ? [nodes[n]!] : []))
        expect(winners, `winners of ${id}`).toHaveLength(1)
        const losers = perNode.filter((reply) => !reply.ok)
        expect(losers.map(codeOf), `losers of ${id}`).toEqual([
          'ERR_SESSION_ALREADY_REGISTERED',
          'ERR_SESSION_ALREADY_REGISTERED',
        ])
        const winner = winners[0]!
        winnerOf.set(id, winner)
        for (const node of nodes) {
          expect(await node.call('getSession', id), `${id} on ${node.nodeId}`).toBe(node === winner ? id : undefined)
        }
      }

      await Promise.all(nodes.map((node) => node.call('flush')))
      for (const id of targets) {
        expect(await nodes[0]!.call('clusterGetSession', id)).toMatchObject({
          sessionId: id,
          clientId: `client-${id}`,
          nodeId: winnerOf.get(id)!.nodeId,
        })
      }
      const stats = await nodes[1]!.call('clusterGetStats')
      expect(stats.totalSessions).toBe(targets.length)
      const local = await Promise.all(nodes.map((node) => node.call('localStats')))
      expect(local.reduce((sum, s) => sum + s.totalSessions, 0)).toBe(targets.length)
      // The losers never held a session, so nothing was closed anywhere.
      for (const node of nodes) expect(await node.call('closeCalls')).toEqual({})
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "the id of a dead node's session can be claimed once that node is reaped",
    async () => {
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'strict' })
      await b.call('register', 'client-1', 'orphan')
      await b.call('flush')
      expect(codeOf(await a.attempt('clusterRegister', 'client-1', 'orphan'))).toBe('ERR_SESSION_ALREADY_REGISTERED')

      b.kill('SIGKILL')
      await b.exited
      await eventually(
        async () => {
          const reply = await a.attempt('clusterRegister', 'client-1', 'orphan')
          expect(reply).toEqual({ ok: true, value: undefined })
        },
        { timeoutMs: LEASE_MS + REAP_SLACK_MS + 2_000, intervalMs: 100, what: 'claiming the dead node’s id' },
      )
      await a.call('flush')
      expect(await a.call('clusterGetSession', 'orphan')).toMatchObject({ nodeId: 'node-a' })
    },
    TEST_TIMEOUT_MS,
  )
})

describe('the fleet-wide maxSessionsPerClient', () => {
  async function registerAll(
    nodes: ClusterNodeProcess[],
    clientId: string,
    perNode: number,
    prefix: string,
  ): Promise<Array<{ node: ClusterNodeProcess; id: string; reply: Reply<undefined> }>> {
    const attempts = nodes.flatMap((node) =>
      Array.from({ length: perNode }, (_, i) => ({ node, id: `${prefix}-${node.nodeId}-${i}` })),
    )
    return Promise.all(
      attempts.map(async ({ node, id }) => ({ node, id, reply: await node.attempt('clusterRegister', clientId, id) })),
    )
  }

  it(
    'holds under racing registrations from three nodes: exactly the limit gets in, the rest get ERR_CLIENT_SESSION_LIMIT',
    async () => {
      const limit = 5
      const nodes = await startFleet(redis.url, ['node-a', 'node-b', 'node-c'], {
        namespace: 'limits',
        maxSessionsPerClient: limit,
      })

      const results = await registerAll(nodes, 'greedy', 4, 'g')
      const accepted = results.filter((r) => r.reply.ok)
      const refused = results.filter((r) => !r.reply.ok)
      expect(accepted).toHaveLength(limit)
      expect(refused.map((r) => codeOf(r.reply))).toEqual(Array(12 - limit).fill('ERR_CLIENT_SESSION_LIMIT'))

      // Only the accepted ones were registered, on their own node.
      for (const { node, id, reply } of results) {
        expect(await node.call('getSession', id), `${id} on ${node.nodeId}`).toBe(reply.ok ? id : undefined)
      }
      await Promise.all(nodes.map((node) => node.call('flush')))
      const listed = await nodes[2]!.call('clusterGetClientSessions', 'greedy')
      expect(ids(listed).sort()).toEqual(accepted.map((r) => r.id).sort())
      expect((await nodes[0]!.call('clusterGetStats')).sessionsByClient).toEqual({ greedy: limit })

      // Another client has its own allowance.
      await expect(nodes[1]!.call('clusterRegister', 'modest', 'm-1')).resolves.toBeUndefined()

      // At the limit, from any node: refused.
      for (const node of nodes) {
        expect(codeOf(await node.attempt('clusterRegister', 'greedy', `late-${node.nodeId}`))).toBe(
          'ERR_CLIENT_SESSION_LIMIT',
        )
      }

      // One session gone (closed from another node than its own): room for
      // exactly one more.
      const victim = accepted[0]!
      const closer = nodes.find((node) => node !== victim.node)!
      await expect(closer.call('clusterUnregister', victim.id)).resolves.toBe(true)
      await victim.node.call('flush')
      const second = await registerAll(nodes, 'greedy', 2, 'again')
      expect(second.filter((r) => r.reply.ok)).toHaveLength(1)
      expect(second.filter((r) => !r.reply.ok).map((r) => codeOf(r.reply))).toEqual(
        Array(5).fill('ERR_CLIENT_SESSION_LIMIT'),
      )
      await Promise.all(nodes.map((node) => node.call('flush')))
      expect(await nodes[1]!.call('clusterGetClientSessions', 'greedy')).toHaveLength(limit)
    },
    TEST_TIMEOUT_MS,
  )
})
