// Cluster mode's lifecycle: the option (absent: no `registry.cluster`;
// wrong: ERR_INVALID_OPTIONS), a node's id, joining and leaving (`leave()`,
// and `dispose()`, which calls it), onNodeDown subscriptions, a registry in a
// worker thread, and a process that exits by itself once it disposed its
// cluster registry.

import os from 'node:os'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import {
  type NityClusterSessionInfo,
  type NityClusterStats,
  type NityNodeDownEvent,
  NitySessionRegistry,
  type NitySessionRegistryOptions,
} from 'nity-session-registry'
import { describe, expect, it } from 'vitest'
import {
  eventually,
  LEASE_MS,
  nodeOptions,
  REAP_SLACK_MS,
  REQUEST_TIMEOUT_MS,
  sleep,
  startFleet,
  startNode,
  redisPerTest,
} from '../helpers/cluster-nodes'
import type { RedisServer } from '../helpers/redis'
import { FakeSession } from '../helpers/sessions'

const TEST_TIMEOUT_MS = 60_000
const WORKER_FIXTURE = path.join(__dirname, '..', 'fixtures', 'cluster', 'worker.mjs')

let redis: RedisServer

redisPerTest((server) => {
  redis = server
})

describe('the cluster option', () => {
  it(
    'a nodeId a live node of the namespace goes by: ready() rejects with ERR_CLUSTER_NODE_ID_IN_USE',
    async () => {
      const options = { redis: redis.url, namespace: 'same-id', nodeId: 'twin', leaseMs: LEASE_MS }
      const first = new NitySessionRegistry({ cluster: options })
      await first.cluster.ready()
      const second = new NitySessionRegistry({ cluster: options })
      const refused = await second.cluster.ready().then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(refused).toBeInstanceOf(Error)
      expect(refused).toMatchObject({ code: 'ERR_CLUSTER_NODE_ID_IN_USE' })
      expect(String((refused as Error).message)).toContain('twin')
      // The first is untouched.
      first.register('c', new FakeSession('kept'))
      await first.cluster.flush()
      expect(await first.cluster.getSession('kept')).toMatchObject({ nodeId: 'twin' })
      await Promise.all([second.dispose(), first.dispose()])
    },
    TEST_TIMEOUT_MS,
  )

  it('without it, registry.cluster is undefined', async () => {
    const plain = new NitySessionRegistry()
    expect(plain.cluster).toBeUndefined()
    const withOthers = new NitySessionRegistry<FakeSession>({ maxSessions: 3, closeTimeoutMs: 1_000 })
    expect(withOthers.cluster).toBeUndefined()
    const explicit = new NitySessionRegistry({ cluster: undefined })
    expect(explicit.cluster).toBeUndefined()
    // And the registry is the documented one.
    const session = new FakeSession('plain-1')
    withOthers.register('c', session)
    expect(withOthers.getSession('plain-1')).toBe(session)
    await expect(withOthers.cleanupClient('c')).resolves.toBe(1)
    await Promise.all([plain.dispose(), withOthers.dispose(), explicit.dispose()])
  })

  it('a wrong cluster option throws ERR_INVALID_OPTIONS (a TypeError) from the constructor', () => {
    const url = redis.url
    const wrong: Array<[string, unknown]> = [
      ['not an object', url],
      ['no redis', {}],
      ['redis not a string', { redis: 6379 }],
      ['redis not a redis URL', { redis: 'http://127.0.0.1:6379' }],
      ['redis not a URL', { redis: 'not a url' }],
      ['empty namespace', { redis: url, namespace: '' }],
      ['namespace with a space', { redis: url, namespace: 'has space' }],
      ['namespace with braces', { redis: url, namespace: 'a{b}' }],
      ['namespace with a colon', { redis: url, namespace: 'a:b' }],
      ['namespace too long', { redis: url, namespace: 'x'.repeat(65) }],
      ['empty nodeId', { redis: url, nodeId: '' }],
      ['nodeId not a string', { redis: url, nodeId: 7 }],
      ['nodeId with a newline', { redis: url, nodeId: 'node\nb' }],
      ['nodeId with a control character', { redis: url, nodeId: 'node\u0007' }],
      ['nodeId over 256 bytes', { redis: url, nodeId: 'é'.repeat(129) }],
      ['leaseMs zero', { redis: url, leaseMs: 0 }],
      ['leaseMs negative', { redis: url, leaseMs: -1 }],
      ['leaseMs NaN', { redis: url, leaseMs: Number.NaN }],
      ['leaseMs a string', { redis: url, leaseMs: '1000' }],
      ['requestTimeoutMs zero', { redis: url, requestTimeoutMs: 0 }],
      ['maxSessionsPerClient zero', { redis: url, maxSessionsPerClient: 0 }],
      ['maxSessionsPerClient fractional', { redis: url, maxSessionsPerClient: 1.5 }],
      ['an unknown key', { redis: url, leaseMS: 1_000 }],
    ]
    for (const [name, cluster] of wrong) {
      let thrown: unknown
      try {
        new NitySessionRegistry({ cluster } as unknown as NitySessionRegistryOptions)
      } catch (error) {
        thrown = error
      }
      expect(thrown, name).toBeInstanceOf(TypeError)
      expect(thrown, name).toMatchObject({ code: 'ERR_INVALID_OPTIONS' })
    }
    // Nothing connected for any of them.
    expect(redis.cli('DBSIZE')).toBe('0')
  })

  it(
    'the node id: as given, or by default the host name, the process id and a random suffix',
    async () => {
      const options = { redis: redis.url, namespace: 'ids', leaseMs: LEASE_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS }
      const first = new NitySessionRegistry<FakeSession>({ cluster: options })
      const second = new NitySessionRegistry<FakeSession>({ cluster: options })
      const named = new NitySessionRegistry<FakeSession>({ cluster: { ...options, nodeId: 'named-node' } })
      try {
        const [one, two, three] = [first.cluster!, second.cluster!, named.cluster!]
        for (const cluster of [one, two]) {
          expect(cluster.nodeId).toContain(os.hostname())
          expect(cluster.nodeId).toContain(String(process.pid))
        }
        expect(one.nodeId).not.toBe(two.nodeId)
        expect(three.nodeId).toBe('named-node')

        await Promise.all([one.ready(), two.ready(), three.ready()])
        expect(one.diagnostics()).toEqual({
          malformedMessages: 0,
          malformedRecords: 0,
          reannounced: 0,
          pendingChanges: 0,
          resyncs: 0,
          digestMismatches: 0,
          conflicts: 0,
        })

        const session = new FakeSession('main-1')
        first.register('main-client', session)
        await one.flush()
        const seen: NityClusterSessionInfo | undefined = await three.getSession('main-1')
        expect(seen).toMatchObject({ sessionId: 'main-1', clientId: 'main-client', nodeId: one.nodeId })
        const stats: NityClusterStats = await two.getStats()
        expect(stats).toMatchObject({ totalSessions: 1, nodes: 3 })
        expect((await two.nodes()).map((n) => n.nodeId).sort()).toEqual([one.nodeId, two.nodeId, 'named-node'].sort())

        // A remote close within one process, between two registries.
        await expect(three.unregister('main-1')).resolves.toBe(true)
        expect(session.closeCalls).toBe(1)
        expect(first.getSession('main-1')).toBeUndefined()
      } finally {
        await Promise.all([first.dispose(), second.dispose(), named.dispose()])
      }
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'onNodeDown tells every subscribed listener once, and not those that unsubscribed',
    async () => {
      const options = { redis: redis.url, namespace: 'down', leaseMs: LEASE_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS }
      const registry = new NitySessionRegistry<FakeSession>({ cluster: { ...options, nodeId: 'watcher' } })
      try {
        const cluster = registry.cluster!
        await cluster.ready()
        const told: NityNodeDownEvent[] = []
        const toldToo: NityNodeDownEvent[] = []
        const never: NityNodeDownEvent[] = []
        cluster.onNodeDown((event) => told.push(event))
        cluster.onNodeDown((event) => toldToo.push(event))
        const unsubscribe = cluster.onNodeDown((event) => never.push(event))
        expect(typeof unsubscribe).toBe('function')
        unsubscribe()
        unsubscribe()

        const victim = await startNode({ cluster: nodeOptions(redis.url, 'victim', { namespace: 'down' }) })
        await victim.call('register', 'c', 'v-1')
        await victim.call('register', 'c', 'v-2')
        await victim.call('flush')
        expect(await cluster.getSession('v-1')).toMatchObject({ nodeId: 'victim' })

        const killedAt = Date.now()
        victim.kill('SIGKILL')
        await victim.exited
        const plain = (events: NityNodeDownEvent[]) => events.map(({ nodeId, sessions }) => ({ nodeId, sessions }))
        await eventually(() => expect(plain(told)).toEqual([{ nodeId: 'victim', sessions: 2 }]), {
          timeoutMs: Math.max(killedAt + LEASE_MS + REAP_SLACK_MS - Date.now(), 0),
          what: 'onNodeDown for the killed node',
        })
        expect(await cluster.getSession('v-1')).toBeUndefined()
        await sleep(LEASE_MS)
        expect(plain(told)).toEqual([{ nodeId: 'victim', sessions: 2 }])
        expect(plain(toldToo)).toEqual([{ nodeId: 'victim', sessions: 2 }])
        expect(never).toEqual([])
      } finally {
        await registry.dispose()
      }
    },
    TEST_TIMEOUT_MS,
  )
})

describe('leaving the fleet', () => {
  it(
    'leave() removes the node and its records at once, and leaves its local sessions alone',
    async () => {
      // A long lease: what goes away within the test went by leave(), not by reaping.
      const [a, c] = await startFleet(redis.url, ['node-a', 'node-c'], { namespace: 'leave', leaseMs: 30_000 })
      await c.call('register', 'c', 'c-1')
      await c.call('register', 'c', 'c-2')
      await c.call('flush')
      expect((await a.call('clusterNodes')).map((n) => n.nodeId).sort()).toEqual(['node-a', 'node-c'])

      await c.call('leave')
      await eventually(
        async () => {
          expect(await a.call('clusterGetSession', 'c-1')).toBeUndefined()
          expect(await a.call('clusterGetClientSessions', 'c')).toEqual([])
          expect((await a.call('clusterNodes')).map((n) => n.nodeId)).toEqual(['node-a'])
          expect(await a.call('clusterGetStats')).toMatchObject({ totalSessions: 0, nodes: 1 })
        },
        { timeoutMs: 5_000, what: 'the node gone from the directory after leave()' },
      )
      expect(await c.call('closeCalls')).toEqual({})
      expect(await c.call('getClientSessions', 'c')).toEqual(['c-1', 'c-2'])
      // The others are told, as of a dead node (README: "declared dead (or
      // leaves)"); the node itself is not told of its own leaving.
      await eventually(
        async () =>
          expect((await a.call('nodeDownEvents')).map(({ nodeId, sessions }) => ({ nodeId, sessions }))).toEqual([
            { nodeId: 'node-c', sessions: 2 },
          ]),
        { timeoutMs: 5_000, what: 'onNodeDown for the node that left' },
      )
      expect(await c.call('nodeDownEvents')).toEqual([])
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'leave() is final: heartbeats and later registrations bring nothing of the node back',
    async () => {
      const [a, c] = await startFleet(redis.url, ['node-a', 'node-c'], { namespace: 'leave-final' })
      await c.call('register', 'c', 'c-1')
      await c.call('flush')
      await c.call('leave')
      await c.call('register', 'c', 'c-2') // local only from now on
      // Three leases: every heartbeat of the node that left found it gone.
      await sleep(3 * LEASE_MS)
      expect((await a.call('clusterNodes')).map((n) => n.nodeId)).toEqual(['node-a'])
      expect(await a.call('clusterGetClientSessions', 'c')).toEqual([])
      expect((await c.call('diagnostics')).reannounced).toBe(0)
      expect(await c.call('getClientSessions', 'c')).toEqual(['c-1', 'c-2'])
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "dispose() closes the node's sessions (reason 'shutdown') and leaves: the others see it gone at once",
    async () => {
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'dispose', leaseMs: 30_000 })
      await b.call('register', 'c', 'b-1')
      await b.call('register', 'c', 'b-2')
      await a.call('register', 'c', 'a-1')
      await Promise.all([a.call('flush'), b.call('flush')])

      await expect(b.call('dispose')).resolves.toBe(2)
      expect(await b.call('closeCalls')).toEqual({ 'b-1': 1, 'b-2': 1 })
      expect((await b.call('closeEvents')).map((e) => e.reason)).toEqual(['shutdown', 'shutdown'])

      await eventually(
        async () => {
          expect(await a.call('clusterGetSession', 'b-1')).toBeUndefined()
          expect(await a.call('clusterGetClientSessions', 'c')).toEqual([
            expect.objectContaining({ sessionId: 'a-1', nodeId: 'node-a' }),
          ])
          expect((await a.call('clusterNodes')).map((n) => n.nodeId)).toEqual(['node-a'])
        },
        { timeoutMs: 5_000, what: 'the disposed node gone from the directory' },
      )
      expect(await a.call('closeCalls')).toEqual({})
      // Told once; how many sessions it still had when it left depends on
      // whether its closes were published first.
      await eventually(async () => expect((await a.call('nodeDownEvents')).map((e) => e.nodeId)).toEqual(['node-b']), {
        timeoutMs: 5_000,
        what: 'onNodeDown for the disposed node',
      })
      expect(await b.call('nodeDownEvents')).toEqual([])
    },
    TEST_TIMEOUT_MS,
  )
})

describe('a registry in a worker thread', () => {
  type WorkerMessage =
    | { type: 'ready'; nodeId: string; threadId: number }
    | {
        type: 'checked'
        seen: NityClusterSessionInfo | undefined
        claimPeer: string
        stats: NityClusterStats
        diagnostics: Record<string, number>
      }
    | {
        type: 'done'
        disposed: number
        closeCalls: Record<string, number>
        closeEvents: Array<{ sessionId: string; reason: string }>
        nodeDown: string[]
      }
    | { type: 'error'; error: { name: string; code?: string; message: string; stack?: string } }

  it(
    'joins the fleet, serves and makes remote requests, and exits by itself after dispose()',
    async () => {
      const peer = await startNode({ cluster: nodeOptions(redis.url, 'peer', { namespace: 'threads' }) })
      await peer.call('register', 'peer-client', 'p-1')
      await peer.call('flush')

      const worker = new Worker(WORKER_FIXTURE, {
        workerData: {
          cluster: nodeOptions(redis.url, 'in-worker', { namespace: 'threads' }),
        },
      })
      const messages: WorkerMessage[] = []
      const errors: unknown[] = []
      worker.on('message', (message: WorkerMessage) => messages.push(message))
      worker.on('error', (error) => errors.push(error))
      let exitCode: number | undefined
      const exited = new Promise<number>((resolve) => worker.once('exit', resolve)).then((code) => {
        exitCode = code
        return code
      })
      try {
        const next = async <T extends WorkerMessage['type']>(type: T): Promise<Extract<WorkerMessage, { type: T }>> =>
          eventually(
            () => {
              const failure = messages.find((m) => m.type === 'error')
              if (failure !== undefined) {
                throw new Error(`the worker failed: ${JSON.stringify((failure as { error: unknown }).error)}`)
              }
              expect(errors).toEqual([])
              const message = messages.find((m) => m.type === type)
              if (message !== undefined) return message as Extract<WorkerMessage, { type: T }>
              expect(exitCode, `the worker exited before its '${type}' message`).toBeUndefined()
              throw new Error(`no '${type}' message yet`)
            },
            { timeoutMs: 30_000, what: `the worker's '${type}' message` },
          )

        const ready = await next('ready')
        expect(ready.nodeId).toBe('in-worker')
        expect(ready.threadId).toBeGreaterThan(0)
        expect(await peer.call('clusterGetSession', 'w-1')).toMatchObject({
          clientId: 'worker-client',
          nodeId: 'in-worker',
        })

        worker.postMessage({ type: 'check', sessionId: 'p-1' })
        const checked = await next('checked')
        expect(checked.seen).toMatchObject({ sessionId: 'p-1', clientId: 'peer-client', nodeId: 'peer' })
        expect(checked.claimPeer).toBe('ERR_SESSION_ALREADY_REGISTERED')
        expect(checked.stats).toMatchObject({
          totalSessions: 4,
          sessionsByClient: { 'peer-client': 1, 'worker-client': 3 },
          nodes: 2,
        })
        expect(checked.diagnostics).toMatchObject({ malformedMessages: 0, pendingChanges: 0 })
        expect(await peer.call('clusterGetSession', 'w-strict')).toMatchObject({ nodeId: 'in-worker' })

        // The worker's registry answers a remote close.
        await expect(peer.call('clusterUnregister', 'w-1')).resolves.toBe(true)

        worker.postMessage({ type: 'finish' })
        const done = await next('done')
        expect(done.disposed).toBe(2)
        expect(done.closeCalls).toEqual({ 'w-1': 1, 'w-2': 1, 'w-strict': 1 })
        expect(done.closeEvents[0]).toEqual({ sessionId: 'w-1', reason: 'remote' })
        expect(done.closeEvents.slice(1).map((e) => e.reason)).toEqual(['shutdown', 'shutdown'])
        expect(done.nodeDown).toEqual([])

        // Then it runs out of work and exits by itself.
        const code = await Promise.race([exited, sleep(15_000).then(() => 'still running' as const)])
        expect(code).toBe(0)
        expect(errors).toEqual([])
        await eventually(async () => expect((await peer.call('clusterNodes')).map((n) => n.nodeId)).toEqual(['peer']), {
          what: 'the worker node gone from the directory',
        })
        expect(await peer.call('closeCalls')).toEqual({})
      } finally {
        if (exitCode === undefined) await worker.terminate()
      }
    },
    TEST_TIMEOUT_MS,
  )
})

describe('process exit', () => {
  it.each([
    ['with Redis up', false],
    ['after Redis went away', true],
  ] as const)(
    'a process that used a cluster registry exits by itself after dispose() (%s)',
    async (_name, redisGone) => {
      // A long lease: the peer sees the node gone because it left, not
      // because it was reaped.
      const options = { namespace: 'exit', leaseMs: 30_000 }
      const peer = await startNode({ cluster: nodeOptions(redis.url, 'peer', options) })
      const node = await startNode({ cluster: nodeOptions(redis.url, 'leaver', options), exitOnDisconnect: false })

      // Use everything: local and strict registers, remote requests both
      // ways, lookups, stats; onNodeDown is subscribed by the fixture.
      await node.call('register', 'c', 'l-1')
      await node.call('clusterRegister', 'c', 'l-2')
      await node.call('flush')
      await peer.call('register', 'c', 'p-1')
      await peer.call('flush')
      await expect(node.call('clusterUnregister', 'p-1')).resolves.toBe(true)
      await expect(peer.call('clusterUnregister', 'l-1')).resolves.toBe(true)
      expect(await node.call('clusterGetStats')).toMatchObject({ totalSessions: 1, nodes: 2 })
      expect(await node.call('clusterNodes')).toHaveLength(2)
      expect(await node.call('clusterGetClientSessions', 'c')).toHaveLength(1)

      if (redisGone) await redis.kill()

      // dispose() settles (with Redis gone, leaving may fail; either way it
      // settles) and closes the local sessions.
      const disposed = await node.attemptWithin(30_000, 'dispose')
      if (!redisGone) expect(disposed).toEqual({ ok: true, value: 1 })
      expect(await node.call('closeCalls')).toEqual({ 'l-1': 1, 'l-2': 1 })

      node.disconnect()
      const exit = await Promise.race([node.exited, sleep(15_000).then(() => 'still running' as const)])
      expect(exit, `the process did not exit by itself:\n${node.output()}`).toEqual({ code: 0, signal: null })

      if (!redisGone) {
        // It left on dispose(): the peer does not wait for its lease.
        await eventually(async () => expect((await peer.call('clusterNodes')).map((n) => n.nodeId)).toEqual(['peer']), {
          timeoutMs: 5_000,
          what: 'the disposed node gone from the directory',
        })
        expect(await peer.call('clusterGetClientSessions', 'c')).toEqual([])
      }
    },
    TEST_TIMEOUT_MS,
  )
})
