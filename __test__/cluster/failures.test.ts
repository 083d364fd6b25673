// Cluster mode when things go wrong: a node killed, or paused past its lease
// and resumed; Redis restarted empty, or unreachable; the pub/sub
// connections cut. Liveness is per node (one lease): a dead node is reaped
// within leaseMs + 500 ms (the tests allow much more: the machine is slow),
// a node that comes back is fenced and re-asserts what it really holds, and
// while Redis is away the documented calls keep working locally.

import { NitySessionRegistry } from 'nity-session-registry'
import { describe, expect, it } from 'vitest'
import {
  type ClusterNodeProcess,
  eventually,
  ids,
  LEASE_MS,
  REAP_SLACK_MS,
  REQUEST_TIMEOUT_MS,
  sleep,
  startFleet,
  withoutZeros,
  redisPerTest,
} from '../helpers/cluster-nodes'
import { freePort, type RedisServer } from '../helpers/redis'
import { FakeSession } from '../helpers/sessions'

const TEST_TIMEOUT_MS = 60_000

let redis: RedisServer

redisPerTest((server) => {
  redis = server
})

/**
 * Waits until every survivor was told the dead node is down and no longer
 * sees it or its sessions, within `since + LEASE_MS + REAP_SLACK_MS`; checks
 * the node was not declared down before its lease could have lapsed.
 */
async function expectReaped(
  survivors: ClusterNodeProcess[],
  dead: string,
  sessions: string[],
  since: number,
): Promise<void> {
  const deadline = since + LEASE_MS + REAP_SLACK_MS
  await eventually(
    async () => {
      for (const survivor of survivors) {
        const events = await survivor.call('nodeDownEvents')
        expect(
          events.map((e) => e.nodeId),
          `onNodeDown on ${survivor.nodeId}`,
        ).toContain(dead)
        for (const id of sessions) expect(await survivor.call('clusterGetSession', id)).toBeUndefined()
        expect((await survivor.call('clusterNodes')).map((n) => n.nodeId)).not.toContain(dead)
      }
    },
    { timeoutMs: Math.max(deadline - Date.now(), 0), what: `reaping ${dead}` },
  )
  for (const survivor of survivors) {
    const [event, ...more] = (await survivor.call('nodeDownEvents')).filter((e) => e.nodeId === dead)
    expect(more).toEqual([])
    expect(event).toEqual({ nodeId: dead, sessions: sessions.length, at: expect.any(Number) })
    // Told within the (loose) bound after the node went silent...
    expect(event!.at).toBeLessThanOrEqual(deadline)
    // ...and not before its lease could have lapsed: the node renewed its
    // lease at most one heartbeat before it went silent, and a heartbeat
    // comes at least twice per lease.
    expect(event!.at).toBeGreaterThanOrEqual(since + LEASE_MS / 2)
  }
}

describe('a dead node', () => {
  it(
    'a node killed with SIGKILL is reaped: its records go and the survivors are told through onNodeDown',
    async () => {
      const [a, b, c] = await startFleet(redis.url, ['node-a', 'node-b', 'node-c'], { namespace: 'dead' })
      const doomed = ['c-0', 'c-1', 'c-2']
      for (const id of doomed) await c.call('register', 'client-c', id)
      await a.call('register', 'client-a', 'a-0')
      await b.call('register', 'client-c', 'b-0')
      await Promise.all([a.call('flush'), b.call('flush'), c.call('flush')])
      expect(await a.call('clusterGetStats')).toMatchObject({ nodes: 3, totalSessions: 5 })

      const killedAt = Date.now()
      c.kill('SIGKILL')
      await c.exited
      await expectReaped([a, b], 'node-c', doomed, killedAt)

      for (const survivor of [a, b]) {
        const stats = await survivor.call('clusterGetStats')
        expect(stats).toMatchObject({
          totalSessions: 2,
          activeClients: 2,
          sessionsByClient: { 'client-a': 1, 'client-c': 1 },
          nodes: 2,
        })
        expect(withoutZeros(stats.sessionsByNode)).toEqual({ 'node-a': 1, 'node-b': 1 })
        expect(ids(await survivor.call('clusterGetClientSessions', 'client-c'))).toEqual(['b-0'])
        expect((await survivor.call('clusterNodes')).map((n) => n.nodeId).sort()).toEqual(['node-a', 'node-b'])
      }

      // The live nodes keep their leases: a while later nobody else was
      // declared down, and the dead node was announced once.
      await sleep(2 * LEASE_MS)
      for (const survivor of [a, b]) {
        expect((await survivor.call('nodeDownEvents')).map((e) => e.nodeId)).toEqual(['node-c'])
        expect(await survivor.call('closeCalls')).toEqual({})
      }
      expect((await a.call('clusterNodes')).map((n) => n.nodeId).sort()).toEqual(['node-a', 'node-b'])
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'a node paused (SIGSTOP) past its lease is reaped; resumed (SIGCONT), it is fenced and re-asserts the sessions it really holds',
    async () => {
      const [a, b, c] = await startFleet(redis.url, ['node-a', 'node-b', 'node-c'], { namespace: 'paused' })
      const held = ['p-0', 'p-1', 'p-2']
      for (const id of held) await c.call('register', 'client-p', id)
      await a.call('register', 'client-a', 'a-0')
      await Promise.all([a.call('flush'), c.call('flush')])

      const stoppedAt = Date.now()
      c.kill('SIGSTOP')
      let resumed = false
      try {
        // Queued while it is stopped, run as soon as it resumes: a local
        // change the node must not lose when it re-asserts.
        const queued = c.call('unregister', 'p-1')
        // Awaited below; if the test fails first, the node is killed and
        // this rejection is not the news.
        queued.catch(() => {})
        await expectReaped([a, b], 'node-c', held, stoppedAt)
        expect((await a.call('clusterGetStats')).nodes).toBe(2)
        expect(await b.call('clusterGetClientSessions', 'client-p')).toEqual([])

        c.kill('SIGCONT')
        resumed = true
        await queued
      } finally {
        if (!resumed) c.kill('SIGCONT')
      }

      // Back: fenced, announced again, and what it holds now is in the
      // directory again (p-1 was unregistered meanwhile).
      await eventually(
        async () => {
          for (const viewer of [a, b]) {
            const sessions = await viewer.call('clusterGetClientSessions', 'client-p')
            expect(ids(sessions).sort()).toEqual(['p-0', 'p-2'])
            expect(sessions.every((s) => s.nodeId === 'node-c')).toBe(true)
            expect(await viewer.call('clusterGetSession', 'p-1')).toBeUndefined()
            const nodes = await viewer.call('clusterNodes')
            expect(nodes.find((n) => n.nodeId === 'node-c')).toMatchObject({ sessions: 2 })
          }
        },
        { timeoutMs: 10_000, what: 'node-c re-asserting its sessions' },
      )
      expect((await c.call('diagnostics')).reannounced).toBeGreaterThanOrEqual(1)

      // Its sessions were never closed by any of this, except the one it
      // was told to unregister.
      expect(await c.call('closeCalls')).toEqual({ 'p-1': 1 })
      expect(await c.call('closeEvents')).toEqual([{ sessionId: 'p-1', clientId: 'client-p', reason: 'unregister' }])
      expect(await c.call('getClientSessions', 'client-p')).toEqual(['p-0', 'p-2'])
      // A node whose own lease lapsed reaps nobody: the others were alive.
      const seenByC = (await c.call('nodeDownEvents')).map((e) => e.nodeId)
      expect(seenByC).not.toContain('node-a')
      expect(seenByC).not.toContain('node-b')
      expect(await a.call('clusterGetSession', 'a-0')).toMatchObject({ nodeId: 'node-a' })

      // And it answers remote requests again.
      await expect(a.call('clusterUnregister', 'p-2')).resolves.toBe(true)
      expect(await c.call('closeCalls')).toEqual({ 'p-1': 1, 'p-2': 1 })
    },
    TEST_TIMEOUT_MS,
  )
})

/**
 * The convergence check: for every client, the fleet's view lists exactly
 * the sessions the nodes hold, each at the node that holds it.
 */
async function expectConverged(nodes: readonly ClusterNodeProcess[], clients: readonly string[]): Promise<void> {
  for (const client of clients) {
    const held: string[] = []
    for (const node of nodes) {
      const nodeId = await node.call('nodeId')
      for (const id of await node.call('getClientSessions', client)) held.push(`${id}@${nodeId}`)
    }
    for (const viewer of nodes) {
      const shown = (await viewer.call('clusterGetClientSessions', client)).map((s) => `${s.sessionId}@${s.nodeId}`)
      expect(shown.sort(), `client ${client} as ${await viewer.call('nodeId')} sees it`).toEqual(held.sort())
    }
  }
}

describe("records lost or come back behind the fleet's back", () => {
  it(
    'the keys holding the records deleted whole: every node re-asserts what it holds within a lease',
    async () => {
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'lost' })
      for (let i = 0; i < 5; i++) await a.call('register', 'x', `a-${i}`)
      await b.call('register', 'y', 'b-0')
      await Promise.all([a.call('flush'), b.call('flush')])
      await expectConverged([a, b], ['x', 'y'])

      redis.cli('DEL', 'nity:{lost}:sessions', 'nity:{lost}:by-client', 'nity:{lost}:by-node')

      // Bound: a heartbeat (every third of the lease) notices, a resync follows.
      await eventually(() => expectConverged([a, b], ['x', 'y']), {
        timeoutMs: LEASE_MS + REAP_SLACK_MS,
        intervalMs: 100,
        what: 'the records back after the delete',
      }).catch(async (error: unknown) => {
        const diagnostics = [await a.call('diagnostics'), await b.call('diagnostics')]
        throw new Error(`${String(error)}; diagnostics ${JSON.stringify(diagnostics)}`)
      })
      for (const node of [a, b]) {
        const diagnostics = await node.call('diagnostics')
        expect(diagnostics.resyncs).toBeGreaterThanOrEqual(1)
        expect(diagnostics.digestMismatches).toBeGreaterThanOrEqual(1)
        expect(await node.call('closeCalls')).toEqual({})
      }
      expect(withoutZeros((await a.call('clusterGetStats')).sessionsByNode)).toEqual({ 'node-a': 5, 'node-b': 1 })
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'sessions registered and removed while Redis stalls past the request timeout leave no ghost and lose nothing',
    async () => {
      // Publications time out on the nodes (500 ms) while Redis sleeps, then
      // run when it wakes; the lease (3 s) outlasts the stall.
      const options = { namespace: 'stall', leaseMs: 3_000, requestTimeoutMs: 500 }
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], options)
      for (let i = 0; i < 10; i++) await a.call('register', 'x', `kept-${i}`)
      await a.call('flush')

      // Every client's commands wait 1.5 s (the pausing one returns at once).
      const stallEnds = Date.now() + 1_500
      expect(redis.cli('CLIENT', 'PAUSE', '1500', 'ALL')).toBe('OK')
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 10; i++) await a.call('register', 'x', `gone-${round}-${i}`)
        for (let i = 0; i < 10; i++) await a.call('unregister', `gone-${round}-${i}`)
        for (let i = 0; i < 3; i++) await a.call('register', 'y', `new-${round}-${i}`)
        await sleep(300)
      }
      await a.call('unregister', 'kept-0')
      await sleep(Math.max(0, stallEnds - Date.now()))

      await eventually(() => expectConverged([a, b], ['x', 'y']), {
        timeoutMs: 3_000 + REAP_SLACK_MS,
        intervalMs: 100,
        what: 'the directory equal to what the nodes hold after the stall',
      })
      expect(await a.call('localStats')).toMatchObject({ totalSessions: 18 })
      expect(await b.call('nodeDownEvents')).toEqual([])
      // The stall really cut publications off: node a had to resync.
      expect((await a.call('diagnostics')).resyncs).toBeGreaterThanOrEqual(1)
    },
    TEST_TIMEOUT_MS,
  )
})

describe('Redis itself', () => {
  it(
    'Redis killed and restarted empty: every node re-asserts its live sessions',
    async () => {
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'restart' })
      for (let i = 0; i < 3; i++) await a.call('register', 'x', `a-${i}`)
      await b.call('register', 'y', 'b-0')
      await b.call('register', 'y', 'b-1')
      await b.call('register', 'x', 'b-2')
      await Promise.all([a.call('flush'), b.call('flush')])

      await redis.restartEmpty()

      await eventually(
        async () => {
          for (const viewer of [a, b]) {
            const stats = await viewer.call('clusterGetStats')
            expect(stats).toMatchObject({
              totalSessions: 6,
              activeClients: 2,
              sessionsByClient: { x: 4, y: 2 },
              nodes: 2,
            })
            expect(withoutZeros(stats.sessionsByNode)).toEqual({ 'node-a': 3, 'node-b': 3 })
            expect(await viewer.call('clusterGetSession', 'b-2')).toMatchObject({ clientId: 'x', nodeId: 'node-b' })
          }
        },
        { timeoutMs: 15_000, intervalMs: 100, what: 'the sessions re-asserted after the restart' },
      )
      for (const node of [a, b]) {
        expect((await node.call('diagnostics')).reannounced).toBeGreaterThanOrEqual(1)
        expect(await node.call('closeCalls')).toEqual({})
        expect(await node.call('nodeDownEvents')).toEqual([])
      }

      // The fleet works as before: strict claims and remote closes.
      expect(await b.attempt('clusterRegister', 'x', 'a-0')).toMatchObject({
        ok: false,
        error: { code: 'ERR_SESSION_ALREADY_REGISTERED' },
      })
      await eventually(async () => expect(await b.call('clusterUnregister', 'a-1')).toBe(true), {
        timeoutMs: 15_000,
        what: 'a remote close after the restart',
      })
      expect(await a.call('closeCalls')).toEqual({ 'a-1': 1 })
    },
    TEST_TIMEOUT_MS,
  )

  it('while Redis is unreachable the documented calls keep working locally and cluster calls reject with ERR_CLUSTER_UNAVAILABLE', async () => {
    const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'outage', requestTimeoutMs: 2_000 })
    await a.call('register', 'p', 'before-1')
    await a.call('register', 'p', 'before-2')
    await b.call('register', 'q', 'b-0')
    await Promise.all([a.call('flush'), b.call('flush')])

    await redis.kill()

    // Local, synchronous, unaffected.
    await a.call('register', 'p', 'during-1')
    expect(await a.call('getSession', 'during-1')).toBe('during-1')
    await a.call('unregister', 'before-1')
    expect(await a.call('closeCalls')).toEqual({ 'before-1': 1 })
    expect(await a.call('getClientSessions', 'p')).toEqual(['before-2', 'during-1'])
    expect(await a.call('localStats')).toEqual({ totalSessions: 2, activeClients: 1, sessionsByClient: { p: 2 } })
    expect(await a.call('diagnostics')).toMatchObject({
      malformedMessages: expect.any(Number),
      malformedRecords: expect.any(Number),
      reannounced: expect.any(Number),
      pendingChanges: expect.any(Number),
    })

    // The cluster's calls refuse.
    const replies = await Promise.all([
      a.attemptWithin(30_000, 'clusterGetSession', 'before-2'),
      a.attemptWithin(30_000, 'clusterGetClientSessions', 'p'),
      a.attemptWithin(30_000, 'clusterGetStats'),
      a.attemptWithin(30_000, 'clusterNodes'),
      a.attemptWithin(30_000, 'clusterUnregister', 'b-0'),
      a.attemptWithin(30_000, 'clusterCleanupClient', 'q'),
      a.attemptWithin(30_000, 'clusterRegister', 'p', 'strict-during'),
    ])
    for (const reply of replies) {
      expect(reply).toMatchObject({ ok: false, error: { name: 'Error', code: 'ERR_CLUSTER_UNAVAILABLE' } })
    }
    // A refused claim registered nothing.
    expect(await a.call('getSession', 'strict-during')).toBeUndefined()
    expect(await b.call('closeCalls')).toEqual({})
    await expect(a.call('ping')).resolves.toBe('pong')
    await expect(b.call('ping')).resolves.toBe('pong')

    // Redis comes back (empty): what A really holds now is in the
    // directory, including what changed during the outage.
    await redis.restartEmpty()
    await eventually(
      async () => {
        const sessions = await b.call('clusterGetClientSessions', 'p')
        expect(ids(sessions).sort()).toEqual(['before-2', 'during-1'])
        expect(sessions.every((s) => s.nodeId === 'node-a')).toBe(true)
        expect(await b.call('clusterGetSession', 'before-1')).toBeUndefined()
        expect(await a.call('clusterGetSession', 'b-0')).toMatchObject({ nodeId: 'node-b' })
      },
      { timeoutMs: 15_000, intervalMs: 100, what: 'the directory after Redis came back' },
    )
    await a.call('flush')
    expect((await a.call('diagnostics')).pendingChanges).toBe(0)
    expect(await b.call('closeCalls')).toEqual({})
  }, 90_000)

  it(
    'the pub/sub connections cut (CLIENT KILL TYPE pubsub): the nodes resubscribe and remote requests are answered',
    async () => {
      const channel = 'nity:{pubsub}:bus'
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'pubsub' })
      for (let i = 0; i < 6; i++) await b.call('register', 'pc', `b-${i}`)
      for (let i = 0; i < 2; i++) await a.call('register', 'pa', `a-${i}`)
      await Promise.all([a.call('flush'), b.call('flush')])
      await expect(a.call('clusterUnregister', 'b-0')).resolves.toBe(true)
      const subscribers = (): number => Number(redis.cli('PUBSUB', 'NUMSUB', channel).split('\n')[1])
      const before = subscribers()
      expect(before).toBeGreaterThanOrEqual(2)

      for (const round of [1, 2]) {
        redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')
        // A request sent right away is answered, or at worst times out
        // cleanly; it never closes twice.
        const early = await a.attemptWithin(30_000, 'clusterUnregister', `b-${round}`)
        if (early.ok) expect(early.value).toBe(true)
        else expect(['ERR_CLUSTER_TIMEOUT', 'ERR_CLUSTER_UNAVAILABLE']).toContain(early.error.code)

        await eventually(() => expect(subscribers()).toBeGreaterThanOrEqual(before), {
          timeoutMs: 10_000,
          what: 'the nodes subscribed again',
        })
        // Once subscribed again, requests both ways are answered at once.
        if ((await b.call('getSession', `b-${round}`)) !== undefined) {
          await expect(a.call('clusterUnregister', `b-${round}`)).resolves.toBe(true)
        }
        await expect(a.call('clusterUnregister', `b-${round + 2}`)).resolves.toBe(true)
        await expect(b.call('clusterUnregister', `a-${round - 1}`)).resolves.toBe(true)
      }
      await expect(a.call('clusterCleanupClient', 'pc')).resolves.toBe(1)

      expect(await b.call('closeCalls')).toEqual(Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`b-${i}`, 1])))
      expect(await a.call('closeCalls')).toEqual({ 'a-0': 1, 'a-1': 1 })
      expect((await b.call('closeEvents')).every((e) => e.reason === 'remote')).toBe(true)
      expect(await a.call('nodeDownEvents')).toEqual([])
      expect(await b.call('nodeDownEvents')).toEqual([])
    },
    TEST_TIMEOUT_MS,
  )
})

describe('no Redis at all', () => {
  it(
    'ready() rejects with ERR_CLUSTER_UNAVAILABLE when nothing listens, and the documented calls still work locally',
    async () => {
      const port = await freePort()
      const registry = new NitySessionRegistry<FakeSession>({
        cluster: {
          redis: `redis://127.0.0.1:${port}/0`,
          nodeId: 'lonely',
          leaseMs: LEASE_MS,
          requestTimeoutMs: 1_000,
        },
      })
      try {
        const cluster = registry.cluster
        expect(cluster).toBeDefined()
        expect(cluster!.nodeId).toBe('lonely')

        const started = Date.now()
        const error = await cluster!.ready().then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error).toBeInstanceOf(Error)
        expect(error).toMatchObject({ code: 'ERR_CLUSTER_UNAVAILABLE' })
        expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 20_000)

        const first = new FakeSession('local-1')
        const second = new FakeSession('local-2')
        registry.register('client', first)
        registry.register('client', second)
        expect(registry.getSession('local-1')).toBe(first)
        expect(registry.getClientSessions('client')).toEqual([first, second])
        expect(registry.getStats()).toEqual({ totalSessions: 2, activeClients: 1, sessionsByClient: { client: 2 } })
        await registry.unregister('local-1')
        expect(first.closeCalls).toBe(1)

        await expect(cluster!.getSession('local-2')).rejects.toMatchObject({ code: 'ERR_CLUSTER_UNAVAILABLE' })
        await expect(cluster!.register('client', new FakeSession('strict'))).rejects.toMatchObject({
          code: 'ERR_CLUSTER_UNAVAILABLE',
        })
        expect(registry.getSession('strict')).toBeUndefined()
        await expect(registry.cleanupClient('client')).resolves.toBe(1)
        expect(second.closeCalls).toBe(1)
      } finally {
        await registry.dispose()
      }
    },
    TEST_TIMEOUT_MS,
  )
})
