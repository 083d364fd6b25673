// One node of `npm run bench:cluster`: a cluster registry in its own process,
// driven over IPC by benchmark/cluster.ts. Sessions close at once.
// argv: <redis url> <node id>

import { monitorEventLoopDelay } from 'node:perf_hooks'
import { NitySessionRegistry } from 'nity-session-registry'

const [redis, nodeId] = process.argv.slice(2)
const registry = new NitySessionRegistry({ cluster: { redis, nodeId, namespace: 'bench', leaseMs: 3000 } })

/** Milliseconds on a clock every process of the machine shares. */
const now = () => performance.timeOrigin + performance.now()

function session(id) {
  return {
    id,
    close: () => Promise.resolve(),
    getHealth: () => ({ state: 'idle', errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: 0 }),
    isRunning: () => false,
    sendTask: async () => ({ output: '' }),
  }
}

/** Registers `count` sessions, a thousand per turn of the event loop; the longest stall meanwhile. */
async function registering(target, count, prefix, client) {
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  for (let i = 0; i < count; i++) {
    target.register(client, session(`${prefix}${i}`))
    if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve))
  }
  if (target.cluster !== undefined) await target.cluster.flush()
  await new Promise((resolve) => setTimeout(resolve, 20))
  histogram.disable()
  return histogram.max / 1e6
}

const commands = {
  ready: () => registry.cluster.ready(),
  /** Registers one session and says when. */
  register: (id, client) => {
    const at = now()
    registry.register(client, session(id))
    return at
  },
  /** Polls the directory until `id` shows, then says when. */
  awaitVisible: async (id) => {
    for (;;) {
      if ((await registry.cluster.getSession(id)) !== undefined) return now()
    }
  },
  /** Times `count` lookups of `id`, one after the other (ms each). */
  timeLookups: async (id, count) => {
    const times = []
    for (let i = 0; i < count; i++) {
      const start = now()
      await registry.cluster.getSession(id)
      times.push(now() - start)
    }
    return times
  },
  /** Times remote unregisters of `ids`, one after the other (ms each). */
  timeUnregisters: async (ids) => {
    const times = []
    for (const id of ids) {
      const start = now()
      const closed = await registry.cluster.unregister(id)
      if (!closed) throw new Error(`${id} was not closed`)
      times.push(now() - start)
    }
    return times
  },
  /**
   * Registers `count` sessions locally, a thousand per turn of the event
   * loop, and times until every node sees them; and the longest stall
   * meanwhile (the registering itself included, a thousand at a time).
   */
  publish: async (count, prefix, client) => {
    // The same loop on a registry without the cluster option first: what
    // the registering itself (and the garbage collector) stalls.
    const plain = new NitySessionRegistry()
    const baseline = await registering(plain, count, `plain-${prefix}`, client)
    await plain.dispose()
    const start = now()
    const stallMs = await registering(registry, count, prefix, client)
    await registry.cluster.flush()
    return { took: now() - start, stallMs, baselineStallMs: baseline }
  },
  stats: () => registry.cluster.getStats(),
  dispose: () => registry.dispose(),
}

process.on('message', async ({ id, command, args }) => {
  try {
    const value = await commands[command](...args)
    process.send({ id, ok: true, value })
  } catch (error) {
    process.send({ id, ok: false, error: String(error?.stack ?? error) })
  }
})
process.send({ ready: true })
