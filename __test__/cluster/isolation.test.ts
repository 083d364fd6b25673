// Cluster mode keeps things apart that must stay apart: ids made of glob,
// separator, escape and format characters, spaces and unicode; namespaces
// on one Redis; and what it shares a Redis with: an ACL user restricted to
// its namespace, and whatever else writes to its channel or its keys, which
// it ignores and counts instead of crashing on.

import { describe, expect, it } from 'vitest'
import {
  type ClusterNodeProcess,
  eventually,
  ids,
  LEASE_MS,
  nodeOptions,
  REAP_SLACK_MS,
  sleep,
  startFleet,
  startNode,
  withoutZeros,
  redisPerTest,
} from '../helpers/cluster-nodes'
import type { RedisServer } from '../helpers/redis'

const TEST_TIMEOUT_MS = 60_000

let redis: RedisServer

redisPerTest((server) => {
  redis = server
})

/**
 * [clientId, sessionId] pairs: every character of `* ? [ ] / : \ { } %`,
 * spaces and unicode, in both kinds of id, and pairs that a naive encoding
 * would confuse (`a` + `bc` and `ab` + `c`; `a:b` + `d` and `a` + `b:d`; a
 * client that is a prefix of another).
 */
const SPECIAL: ReadonlyArray<readonly [string, string]> = [
  ['*', 'a*b'],
  ['?', 'a?b'],
  ['[x]', '[x]'],
  ['a[b-c]d', 'abd'],
  ['a/b', 'a/b'],
  ['a:b', 'd'],
  ['a', 'b:d'],
  ['a', 'bc'],
  ['ab', 'c'],
  ['back\\slash', 'x\\y'],
  ['{tag}', '{nity}'],
  ['}{', '{'],
  ['%', '%s%d%n'],
  ['100%', '%%'],
  ['with space', 'with space'],
  [' ', ' '],
  ['ünïcödé', 'ünïcödé'],
  ['日本語', '会話-1'],
  ['🙂', '🙂🙃'],
  ['constructor', 'toString'],
  ['pre', 'pre'],
  ['prefix', 'prefix'],
  ['1:a', '1:'],
  ['nity:{iso}:sessions', 'nity:{iso}:bus'],
]

describe('ids with special characters', () => {
  it(
    'stay distinct in lookups, stats, claims and remote closes',
    async () => {
      const specialNode = 'n/ode:{b} ü *'
      const [a, b] = await startFleet(redis.url, ['node-a', specialNode], { namespace: 'iso' })
      const holder = new Map<string, ClusterNodeProcess>()
      for (const [index, [clientId, sessionId]] of SPECIAL.entries()) {
        const node = index % 2 === 0 ? a : b
        await node.call('register', clientId, sessionId)
        holder.set(sessionId, node)
      }
      await Promise.all([a.call('flush'), b.call('flush')])

      const expectedByClient = new Map<string, string[]>()
      for (const [clientId, sessionId] of SPECIAL) {
        expectedByClient.set(clientId, [...(expectedByClient.get(clientId) ?? []), sessionId])
      }
      const expectedCounts = Object.fromEntries([...expectedByClient].map(([client, list]) => [client, list.length]))

      const check = async (viewer: ClusterNodeProcess, removed: ReadonlySet<string>): Promise<void> => {
        for (const [clientId, sessionId] of SPECIAL) {
          const record = await viewer.call('clusterGetSession', sessionId)
          if (removed.has(sessionId)) {
            expect(record, `record of ${JSON.stringify(sessionId)}`).toBeUndefined()
          } else {
            expect(record, `record of ${JSON.stringify(sessionId)}`).toEqual({
              sessionId,
              clientId,
              nodeId: holder.get(sessionId)!.nodeId,
              registeredAt: expect.any(Number),
            })
          }
        }
        for (const [clientId, list] of expectedByClient) {
          const listed = ids(await viewer.call('clusterGetClientSessions', clientId))
          expect(listed.sort(), `sessions of client ${JSON.stringify(clientId)}`).toEqual(
            list.filter((id) => !removed.has(id)).sort(),
          )
        }
      }

      for (const viewer of [a, b]) {
        await check(viewer, new Set())
        const stats = await viewer.call('clusterGetStats')
        expect(stats.sessionsByClient).toEqual(expectedCounts)
        expect(stats.totalSessions).toBe(SPECIAL.length)
        expect(stats.activeClients).toBe(expectedByClient.size)
        expect(withoutZeros(stats.sessionsByNode)).toEqual({
          'node-a': Math.ceil(SPECIAL.length / 2),
          [specialNode]: Math.floor(SPECIAL.length / 2),
        })
        expect((await viewer.call('clusterNodes')).map((n) => n.nodeId).sort()).toEqual(['node-a', specialNode].sort())
      }

      // A taken id is refused, whatever characters it has.
      for (const [, taken] of SPECIAL) {
        expect(await b.attempt('clusterRegister', 'someone', taken), `claiming ${JSON.stringify(taken)}`).toMatchObject(
          {
            ok: false,
            error: { code: 'ERR_SESSION_ALREADY_REGISTERED' },
          },
        )
      }

      // Remote closes touch exactly what they name.
      const removed = new Set<string>()
      await expect(a.call('clusterUnregister', 'a*b')).resolves.toBe(true)
      removed.add('a*b')
      await expect(b.call('clusterUnregister', '{')).resolves.toBe(true)
      removed.add('{')
      await expect(a.call('clusterUnregister', 'a?')).resolves.toBe(false)
      await expect(a.call('clusterUnregister', '*')).resolves.toBe(false)
      // Client 'a' has 'b:d' and 'bc'; not 'a:b''s 'd' nor 'ab''s 'c'.
      await expect(b.call('clusterCleanupClient', 'a')).resolves.toBe(2)
      removed.add('b:d')
      removed.add('bc')
      // Client '*' is one client, not all of them.
      await expect(b.call('clusterCleanupClient', '*')).resolves.toBe(0)
      await expect(a.call('clusterCleanupClient', 'pre')).resolves.toBe(1)
      removed.add('pre')
      await Promise.all([a.call('flush'), b.call('flush')])

      const closed = { ...(await a.call('closeCalls')), ...(await b.call('closeCalls')) }
      expect(Object.keys(closed).sort()).toEqual([...removed].sort())
      expect(Object.values(closed).every((n) => n === 1)).toBe(true)
      for (const viewer of [a, b]) await check(viewer, removed)

      // Ids a glob or a prefix would match are free: claims of them succeed.
      const free = ['a*c', 'axb', 'x', 'a', 'ab', 'abc', '%s', '{nity', '日本', 'pre ', 'a*b*']
      for (const id of free) {
        await expect(b.call('clusterRegister', 'claims', id), `claiming ${JSON.stringify(id)}`).resolves.toBeUndefined()
      }
      await b.call('flush')
      expect(ids(await a.call('clusterGetClientSessions', 'claims')).sort()).toEqual([...free].sort())
      await expect(a.call('clusterCleanupClient', 'claims')).resolves.toBe(free.length)
      await b.call('flush')
      for (const viewer of [a, b]) await check(viewer, removed)
    },
    TEST_TIMEOUT_MS,
  )
})

describe('namespaces', () => {
  it(
    'nodes of two namespaces on one server never see each other, even with the same node and session ids',
    async () => {
      const [alpha1, alpha2, beta1] = await Promise.all([
        startNode({ cluster: nodeOptions(redis.url, 'n1', { namespace: 'alpha' }) }),
        startNode({ cluster: nodeOptions(redis.url, 'n2', { namespace: 'alpha' }) }),
        startNode({ cluster: nodeOptions(redis.url, 'n1', { namespace: 'beta' }) }),
      ])
      await alpha1.call('register', 'shared', 'same')
      await alpha2.call('register', 'alpha-client', 'alpha-only')
      await beta1.call('register', 'shared', 'same')
      await beta1.call('register', 'beta-client', 'beta-only')
      await Promise.all([alpha1.call('flush'), alpha2.call('flush'), beta1.call('flush')])

      for (const viewer of [alpha1, alpha2]) {
        expect(await viewer.call('clusterGetStats')).toMatchObject({
          totalSessions: 2,
          activeClients: 2,
          sessionsByClient: { shared: 1, 'alpha-client': 1 },
          nodes: 2,
        })
        expect(await viewer.call('clusterGetSession', 'beta-only')).toBeUndefined()
        expect((await viewer.call('clusterNodes')).map((n) => n.nodeId).sort()).toEqual(['n1', 'n2'])
      }
      expect(await beta1.call('clusterGetStats')).toMatchObject({
        totalSessions: 2,
        activeClients: 2,
        sessionsByClient: { shared: 1, 'beta-client': 1 },
        nodes: 1,
      })
      expect(await beta1.call('clusterGetSession', 'alpha-only')).toBeUndefined()
      expect(await beta1.call('clusterNodes')).toEqual([expect.objectContaining({ nodeId: 'n1', sessions: 2 })])

      // An id held in alpha is free in beta.
      await expect(beta1.call('clusterRegister', 'beta-client', 'alpha-only')).resolves.toBeUndefined()
      // Closing in alpha leaves beta alone.
      await expect(alpha2.call('clusterCleanupClient', 'shared')).resolves.toBe(1)
      await expect(alpha2.call('clusterUnregister', 'beta-only')).resolves.toBe(false)
      expect(await alpha1.call('closeCalls')).toEqual({ same: 1 })
      expect(await beta1.call('closeCalls')).toEqual({})
      expect(await beta1.call('getClientSessions', 'shared')).toEqual(['same'])

      // A node dying in alpha (node id n1, as beta's own node) is alpha's
      // business only.
      const killedAt = Date.now()
      alpha1.kill('SIGKILL')
      await alpha1.exited
      await eventually(async () => expect((await alpha2.call('nodeDownEvents')).map((e) => e.nodeId)).toEqual(['n1']), {
        timeoutMs: Math.max(killedAt + LEASE_MS + REAP_SLACK_MS - Date.now(), 0),
        what: 'alpha reaping its n1',
      })
      await sleep(LEASE_MS)
      expect(await beta1.call('nodeDownEvents')).toEqual([])
      expect(await beta1.call('clusterNodes')).toEqual([expect.objectContaining({ nodeId: 'n1' })])
      await beta1.call('flush')
      expect(ids(await beta1.call('clusterGetClientSessions', 'beta-client')).sort()).toEqual([
        'alpha-only',
        'beta-only',
      ])
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "the default namespace is 'nity'",
    async () => {
      const [implicit, explicit, other] = await Promise.all([
        startNode({ cluster: { redis: redis.url, nodeId: 'implicit', leaseMs: LEASE_MS } }),
        startNode({ cluster: nodeOptions(redis.url, 'explicit', { namespace: 'nity' }) }),
        startNode({ cluster: nodeOptions(redis.url, 'other', { namespace: 'not-nity' }) }),
      ])
      await implicit.call('register', 'c', 'from-implicit')
      await implicit.call('flush')
      expect(await explicit.call('clusterGetSession', 'from-implicit')).toMatchObject({ nodeId: 'implicit' })
      expect((await explicit.call('clusterNodes')).map((n) => n.nodeId).sort()).toEqual(['explicit', 'implicit'])
      expect(await other.call('clusterGetSession', 'from-implicit')).toBeUndefined()
      expect((await other.call('clusterNodes')).map((n) => n.nodeId)).toEqual(['other'])
    },
    TEST_TIMEOUT_MS,
  )
})

describe('ACL users', () => {
  const user = 'bridge-user'
  const password = 's3cret-P4ss'

  function createUser(): void {
    expect(redis.cli('ACL', 'SETUSER', user, 'on', `>${password}`, '~nity:{acl}:*', '&nity:{acl}:*', '+@all')).toBe(
      'OK',
    )
  }

  it(
    'nodes authenticate with user:password@ and work within the namespace the user is allowed',
    async () => {
      createUser()
      const url = redis.urlWith({ user, password })
      const [a, b] = await startFleet(url, ['acl-a', 'acl-b'], { namespace: 'acl' })

      // Every connection of the nodes is the ACL user's (only redis-cli's
      // own is the default user's).
      const clients = redis
        .cli('CLIENT', 'LIST')
        .split('\n')
        .filter((line) => !/cmd=client\|list/.test(line))
      expect(clients.length).toBeGreaterThanOrEqual(2)
      for (const line of clients) expect(line).toContain(`user=${user}`)

      await a.call('register', 'c', 'acl-1')
      await a.call('register', 'c', 'acl-2')
      await a.call('flush')
      expect(await b.call('clusterGetSession', 'acl-1')).toMatchObject({ clientId: 'c', nodeId: 'acl-a' })
      expect(await b.call('clusterGetStats')).toMatchObject({ totalSessions: 2, nodes: 2 })
      expect(await b.attempt('clusterRegister', 'c', 'acl-1')).toMatchObject({
        ok: false,
        error: { code: 'ERR_SESSION_ALREADY_REGISTERED' },
      })
      await expect(b.call('clusterRegister', 'c', 'acl-3')).resolves.toBeUndefined()
      await expect(b.call('clusterUnregister', 'acl-2')).resolves.toBe(true)
      await expect(a.call('clusterCleanupClient', 'c')).resolves.toBe(2)
      expect(await a.call('closeCalls')).toEqual({ 'acl-1': 1, 'acl-2': 1 })
      expect(await b.call('closeCalls')).toEqual({ 'acl-3': 1 })
      // Nothing was written outside the namespace.
      expect(
        redis
          .cli('KEYS', '*')
          .split('\n')
          .filter(Boolean)
          .every((key) => key.startsWith('nity:{acl}:')),
      ).toBe(true)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'a wrong password: ready() rejects with ERR_CLUSTER_UNAVAILABLE',
    async () => {
      createUser()
      const node = await startNode({
        cluster: nodeOptions(redis.urlWith({ user, password: 'wrong' }), 'intruder', {
          namespace: 'acl',
          requestTimeoutMs: 1_000,
        }),
        awaitReady: false,
      })
      const reply = await node.attempt('ready')
      expect(reply).toMatchObject({ ok: false, error: { code: 'ERR_CLUSTER_UNAVAILABLE' } })
      // The documented calls work locally all the same.
      await node.call('register', 'c', 'local-only')
      expect(await node.call('getSession', 'local-only')).toBe('local-only')
      expect(redis.cli('EXISTS', 'nity:{acl}:sessions')).toBe('0')
    },
    TEST_TIMEOUT_MS,
  )
})

describe('what others write into the namespace', () => {
  it(
    "malformed messages on the cluster's channel are ignored and counted; no node crashes",
    async () => {
      const channel = 'nity:{junk}:bus'
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: 'junk' })
      await b.call('register', 'c', 'j-1')
      await b.call('register', 'c', 'j-2')
      await b.call('flush')

      const junk = [
        'garbage',
        '',
        '{',
        '[]',
        'null',
        '42',
        '"text"',
        '{}',
        '{"type":"nonsense"}',
        '\u0001\u0002\u00ff',
        'é'.repeat(5_000),
      ]
      for (const message of junk) {
        // Both nodes are subscribed.
        expect(Number(redis.cli('PUBLISH', channel, message))).toBeGreaterThanOrEqual(2)
      }

      await eventually(
        async () => {
          for (const node of [a, b]) {
            expect((await node.call('diagnostics')).malformedMessages, `on ${node.nodeId}`).toBe(junk.length)
          }
        },
        { what: 'every malformed message counted once by each node' },
      )
      for (const node of [a, b]) {
        expect(node.alive).toBe(true)
        await expect(node.call('ping')).resolves.toBe('pong')
      }
      // Nothing was acted on, and the cluster still works.
      expect(await b.call('closeCalls')).toEqual({})
      expect(ids(await a.call('clusterGetClientSessions', 'c'))).toEqual(['j-1', 'j-2'])
      await expect(a.call('clusterUnregister', 'j-1')).resolves.toBe(true)
      expect(await b.call('closeCalls')).toEqual({ 'j-1': 1 })
      expect((await a.call('diagnostics')).malformedMessages).toBe(junk.length)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'records someone else wrote into the namespace are ignored and counted; no node crashes',
    async () => {
      const ns = 'records'
      const [a, b] = await startFleet(redis.url, ['node-a', 'node-b'], { namespace: ns })
      await a.call('register', 'c', 'good-1')
      await a.call('flush')

      const sessions = `nity:{${ns}}:sessions`
      redis.cli('HSET', sessions, 'bad', 'notjson')
      redis.cli('HSET', sessions, 'bad-shape', '{"c":1}')
      redis.cli('HSET', sessions, 'bad-array', '[]')
      redis.cli('HSET', sessions, 'bad-empty', '')
      // Well formed, but of a node that is not a live member of the fleet.
      redis.cli('HSET', sessions, 'phantom-1', JSON.stringify({ c: 'c', n: 'phantom', e: 1, t: 1 }))
      redis.cli('HSET', `nity:{${ns}}:nodes`, 'ghost', 'notjson')
      redis.cli('ZADD', `nity:{${ns}}:by-client`, '0', 'nonsense', '0', '999:c', '0', '1:cphantom-2')

      for (const viewer of [b, a]) {
        for (const id of ['bad', 'bad-shape', 'bad-array', 'bad-empty', 'phantom-1', 'phantom-2']) {
          expect(await viewer.call('clusterGetSession', id), `record ${id}`).toBeUndefined()
        }
        expect(ids(await viewer.call('clusterGetClientSessions', 'c'))).toEqual(['good-1'])
        const stats = await viewer.call('clusterGetStats')
        expect(stats).toMatchObject({ totalSessions: 1, activeClients: 1, sessionsByClient: { c: 1 }, nodes: 2 })
        expect(withoutZeros(stats.sessionsByNode)).toEqual({ 'node-a': 1 })
        expect((await viewer.call('clusterNodes')).map((n) => n.nodeId).sort()).toEqual(['node-a', 'node-b'])
        expect((await viewer.call('diagnostics')).malformedRecords).toBeGreaterThanOrEqual(1)
      }

      // The nodes live on through several heartbeats and reaps, and work.
      await sleep(3 * LEASE_MS)
      for (const node of [a, b]) {
        expect(node.alive).toBe(true)
        await expect(node.call('ping')).resolves.toBe('pong')
        const down = (await node.call('nodeDownEvents')).map((e) => e.nodeId)
        expect(down).not.toContain('node-a')
        expect(down).not.toContain('node-b')
      }
      await expect(b.call('clusterRegister', 'c', 'good-2')).resolves.toBeUndefined()
      await expect(b.call('clusterUnregister', 'good-1')).resolves.toBe(true)
      expect(await a.call('closeCalls')).toEqual({ 'good-1': 1 })
      await b.call('flush')
      expect(ids(await a.call('clusterGetClientSessions', 'c'))).toEqual(['good-2'])
    },
    TEST_TIMEOUT_MS,
  )
})
