/**
 * Memory per registered session for one implementation, in a fresh process:
 * `node --expose-gc --import tsx benchmark/memory-probe.ts native|map COUNT`.
 * Prints `{ heapUsed, external, rss }` in bytes per session as JSON.
 */
import { NitySessionRegistry, type NitySessionHandle, type NitySessionHealth } from 'nity-session-registry'
import { MapSessionRegistry } from './map-registry'

const [impl, countArg] = process.argv.slice(2)
const count = Number(countArg ?? 100_000)
const HEALTHY: NitySessionHealth = { state: 'idle', errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: 0 }

class ProbeSession implements NitySessionHandle {
  constructor(readonly id: string) {}
  async close() {}
  getHealth() {
    return HEALTHY
  }
  isRunning() {
    return false
  }
  async sendTask() {
    return { output: '' }
  }
}

/** Flat strings (join builds them flat), like ids that arrive off the wire. */
function sessionId(i: number): string {
  return ['session', i.toString(36), String((i * 2654435761) % 1e9)].join('-')
}

function collect(): NodeJS.MemoryUsage {
  for (let i = 0; i < 4; i++) globalThis.gc!()
  return process.memoryUsage()
}

function create() {
  return impl === 'native' ? new NitySessionRegistry() : new MapSessionRegistry()
}

// Warm up: code, inline caches and lazily built internals of the chosen
// implementation exist before the baseline, so the delta is the sessions'.
{
  const warm = create()
  for (let i = 0; i < 1_000; i++) warm.register(`warm-${i % 10}`, new ProbeSession(`warm-${i}`))
}

const sessions = Array.from({ length: count }, (_, i) => new ProbeSession(sessionId(i)))
const clients = Array.from({ length: Math.ceil(count / 10) }, (_, i) => `client-${i}`)
const before = collect()
const registry = create()
sessions.forEach((s, i) => registry.register(clients[Math.floor(i / 10)]!, s))
const after = collect()
if (registry.getStats().totalSessions !== count) throw new Error('not all sessions registered')
console.log(
  JSON.stringify({
    heapUsed: (after.heapUsed - before.heapUsed) / count,
    external: (after.external - before.external) / count,
    rss: (after.rss - before.rss) / count,
  }),
)
