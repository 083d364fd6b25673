import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { NitySessionRegistry, type NitySessionRegistryStats } from 'nity-session-registry'
import { FakeSession } from './helpers/sessions'
import { firstMessage, runNode, runWorker } from './helpers/processes'

const fixtures = path.join(__dirname, 'fixtures', 'workers')
const fixture = (name: string): string => path.join(fixtures, name)

interface WorkloadResult {
  error?: string
  index: number
  threadId: number
  statsA: NitySessionRegistryStats
  statsB: NitySessionRegistryStats
  removed: { unregister: number; cleanupClient: number; cleanupStale: number }
  eventsA: { unregister: number; cleanupClient: number; cleanupStale: number }
  eventsB: { unregister: number; cleanupClient: number; cleanupStale: number }
  eventErrors: number
  closedOnce: number
  closedTwice: string[]
  firstAlpha: string[]
}

/** What registry-worker.cjs must report for a worker of this index. */
function expectedWorkload(index: number, rounds: number) {
  const n = 3 + index
  return {
    index,
    statsA: {
      totalSessions: 2 * rounds * (n - 1),
      activeClients: 2,
      sessionsByClient: { alpha: rounds * (n - 1), gamma: rounds * (n - 1) },
    },
    statsB: {
      totalSessions: 3 * rounds * n,
      activeClients: 3,
      sessionsByClient: { alpha: rounds * n, beta: rounds * n, gamma: rounds * n },
    },
    removed: { unregister: rounds, cleanupClient: rounds * n, cleanupStale: rounds },
    eventsA: { unregister: rounds, cleanupClient: rounds * n, cleanupStale: rounds },
    eventsB: { unregister: 0, cleanupClient: 0, cleanupStale: 0 },
    eventErrors: 0,
    closedOnce: rounds * (n + 2),
    closedTwice: [],
    firstAlpha: ['alpha-0-1', 'alpha-0-2'],
  }
}

/** Runs `count` registry-worker.cjs workers at once and checks each result. */
async function runWorkloads(count: number, rounds: number): Promise<WorkloadResult[]> {
  const barrier = new SharedArrayBuffer(4)
  const runs = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      runWorker<WorkloadResult>(fixture('registry-worker.cjs'), { index, rounds, barrier, parties: count }),
    ),
  )
  const results: WorkloadResult[] = []
  for (const run of runs) {
    expect(run.error).toBeUndefined()
    expect(run.exitCode).toBe(0)
    expect(run.messages).toHaveLength(1)
    const [result] = run.messages
    expect(result.error).toBeUndefined()
    results.push(result)
  }
  return results
}

/** The same ids every worker uses, registered in this (the main) thread. */
function mainThreadRegistry(): NitySessionRegistry<FakeSession> {
  const registry = new NitySessionRegistry<FakeSession>()
  for (const client of ['alpha', 'beta', 'gamma']) {
    for (let k = 0; k < 4; k++) registry.register(client, new FakeSession(`${client}-0-${k}`))
  }
  return registry
}

describe('registries inside worker threads', () => {
  it('runs several workers at once, each with its own registries, with correct and independent results', async () => {
    const main = mainThreadRegistry()
    const rounds = 20
    const pending = runWorkloads(4, rounds)
    // Use the main thread's registry (same ids) while the workers run.
    let mainRounds = 0
    let done = false
    void pending.finally(() => {
      done = true
    })
    while (!done) {
      main.register('main-client', new FakeSession(`main-${mainRounds}`))
      await main.unregister(`main-${mainRounds}`)
      mainRounds += 1
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    const results = await pending

    expect(results.map((r) => r.index)).toEqual([0, 1, 2, 3])
    for (const result of results) {
      const { threadId, ...rest } = result
      expect(threadId).toBeGreaterThan(0)
      expect(rest).toEqual(expectedWorkload(result.index, rounds))
    }
    expect(new Set(results.map((r) => r.threadId)).size).toBe(4)

    // The main thread's registry saw none of the workers' sessions.
    expect(main.getStats()).toEqual({
      totalSessions: 12,
      activeClients: 3,
      sessionsByClient: { alpha: 4, beta: 4, gamma: 4 },
    })
    expect(main.getSession('alpha-0-0')).toBeInstanceOf(FakeSession)
    expect(main.getSession('alpha-0-0')?.closeCalls).toBe(0)
  })
})

describe('terminating workers', () => {
  it.each(['idle', 'busy', 'busy-async'] as const)(
    'a worker terminated (%s) while its registry holds sessions and closes are pending does not crash the parent',
    async (mode) => {
      const worker = new Worker(fixture('terminate-worker.cjs'), { workerData: { mode } })
      const errors: unknown[] = []
      worker.on('error', (e) => errors.push(e))
      const exited = new Promise<number>((resolve) => worker.once('exit', resolve))
      const ready = await firstMessage<{ ready: boolean; stats: NitySessionRegistryStats }>(worker)
      expect(ready.ready).toBe(true)
      // The three never-settling closes had begun, so only the 50 kept
      // sessions are registered.
      expect(ready.stats.totalSessions).toBe(50)

      const code = await worker.terminate()
      // terminate() reports 1 for a worker it stopped.
      expect(code).toBe(1)
      expect(await exited).toBe(1)
      expect(errors).toEqual([])

      // The parent is alive, its own addon instance works, and new workers
      // can load and use the addon.
      const main = new NitySessionRegistry<FakeSession>()
      main.register('c', new FakeSession('after-terminate'))
      await expect(main.cleanupClient('c')).resolves.toBe(1)

      const results = await runWorkloads(2, 3)
      for (const result of results) {
        const { threadId, ...rest } = result
        expect(threadId).toBeGreaterThan(0)
        expect(rest).toEqual(expectedWorkload(result.index, 3))
      }
    },
    60_000,
  )

  it('terminating several workers in a row, then starting new ones, keeps the parent working', async () => {
    for (let i = 0; i < 3; i++) {
      const workers = (['idle', 'busy', 'busy-async'] as const).map(
        (mode) => new Worker(fixture('terminate-worker.cjs'), { workerData: { mode } }),
      )
      await Promise.all(workers.map((worker) => firstMessage(worker)))
      const codes = await Promise.all(workers.map((worker) => worker.terminate()))
      expect(codes).toEqual([1, 1, 1])
    }
    const results = await runWorkloads(4, 2)
    expect(results.map((r) => r.statsA.totalSessions)).toEqual([0, 1, 2, 3].map((i) => 2 * 2 * (3 + i - 1)))
  }, 120_000)
})

describe('workers that exit by themselves', () => {
  it.each([
    ['with sessions still registered', false],
    ['with sessions still registered and a close that never settles', true],
  ] as const)('a worker that used the registry exits with code 0 (%s)', async (_name, pendingClose) => {
    const run = await runWorker<{
      error?: string
      stats: NitySessionRegistryStats
      cleaned: number
      staleCount: number
      events: string[]
    }>(fixture('self-exit-worker.cjs'), { pending: pendingClose })
    expect(run.error).toBeUndefined()
    expect(run.exitCode).toBe(0)
    expect(run.messages).toHaveLength(1)
    const [message] = run.messages
    expect(message.error).toBeUndefined()
    // 20 sessions over 4 clients; s-0 unregistered, client-1 (5) cleaned up,
    // s-2 stale: 13 left, on clients 0, 2 and 3.
    expect(message.cleaned).toBe(5)
    expect(message.staleCount).toBe(1)
    expect(message.stats).toEqual({
      totalSessions: 13,
      activeClients: 3,
      sessionsByClient: { 'client-0': 4, 'client-2': 4, 'client-3': 5 },
    })
    expect(message.events.sort()).toEqual(
      [
        'unregister',
        'cleanupClient',
        'cleanupClient',
        'cleanupClient',
        'cleanupClient',
        'cleanupClient',
        'cleanupStale',
      ].sort(),
    )
  })
})

describe('process exit', () => {
  it.each(['plain', 'worker', 'gc'])(
    'a process that used the registry and left sessions, a pending close and listeners behind exits by itself (%s)',
    async (mode) => {
      const result = await runNode(fixture('exits-by-itself.mjs'), [mode], { nodeArgs: ['--expose-gc'] })
      expect(result.timedOut, `stderr: ${result.stderr}`).toBe(false)
      expect(result.signal, `stderr: ${result.stderr}`).toBeNull()
      expect(result.code, `stderr: ${result.stderr}`).toBe(0)
      const marker = result.stdout.split('\n').find((line) => line.startsWith('fixture-done '))
      expect(marker, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBeDefined()
      const report = JSON.parse(marker!.slice('fixture-done '.length))
      expect(report).toEqual({
        mode,
        stats: { totalSessions: 18, activeClients: 2, sessionsByClient: { 'client-0': 9, 'client-2': 9 } },
        cleaned: 10,
        stale: 1,
        events: ['unregister', ...Array.from({ length: 10 }, () => 'cleanupClient'), 'cleanupStale'],
      })
    },
    60_000,
  )
})

describe('loading the addon in several threads', () => {
  it('loads in the main thread and in several workers at the same time, once per thread', async () => {
    const parties = 4
    const barrier = new SharedArrayBuffer(4)
    const main = new NitySessionRegistry<FakeSession>()
    const workers = Array.from({ length: parties }, (_, index) =>
      runWorker<{
        error?: string
        index: number
        threadId: number
        sameModule: boolean
        sameClass: boolean
        exports: string[]
        cleaned: number
        stats: NitySessionRegistryStats
        secondStats: NitySessionRegistryStats
        isInstance: boolean
      }>(fixture('load-worker.cjs'), { index, barrier, parties }),
    )
    // Keep using the main thread's addon while the workers load theirs.
    let done = false
    const all = Promise.all(workers)
    void all.finally(() => {
      done = true
    })
    let i = 0
    while (!done) {
      main.register(`client-${i % 3}`, new FakeSession(`shared-${i}`))
      if (i % 2 === 0) await main.unregister(`shared-${i}`)
      i += 1
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    const runs = await all

    const threadIds = new Set<number>()
    for (const [index, run] of runs.entries()) {
      expect(run.error).toBeUndefined()
      expect(run.exitCode).toBe(0)
      expect(run.messages).toHaveLength(1)
      const [message] = run.messages
      expect(message.error).toBeUndefined()
      expect(message.index).toBe(index)
      expect(message.exports).toEqual(['NitySessionRegistry', 'isNityError'])
      // Within a thread, both ways of loading give the one module instance.
      expect(message.sameModule).toBe(true)
      expect(message.sameClass).toBe(true)
      expect(message.isInstance).toBe(true)
      // 100 sessions over 3 clients; client-0 (34 of them) cleaned up.
      expect(message.cleaned).toBe(34)
      expect(message.stats).toEqual({
        totalSessions: 66,
        activeClients: 2,
        sessionsByClient: { 'client-1': 33, 'client-2': 33 },
      })
      // A second registry in the same thread holds the same id on its own.
      expect(message.secondStats).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { 'client-0': 1 } })
      threadIds.add(message.threadId)
    }
    expect(threadIds.size).toBe(parties)

    // The main thread's registry holds exactly its own sessions: every odd
    // one of the `i` registered (the same ids the workers used).
    const kept = Math.floor(i / 2)
    expect(main.getStats().totalSessions).toBe(kept)
    if (kept > 0) expect(main.getSession('shared-1')).toBeInstanceOf(FakeSession)
  }, 60_000)
})
