/**
 * `npm run bench`: the native registry side by side with a plain-JS registry
 * built on Maps and with the N-API floor, on the same operations and data, in
 * one process and one run. Prints a table and writes benchmark/RESULTS.md.
 */
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { cpus, platform, arch } from 'node:os'
import { join } from 'node:path'
import { readFileSync, writeFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Bench } from 'tinybench'
import { NitySessionRegistry, type NitySessionHandle, type NitySessionHealth } from 'nity-session-registry'
import { MapSessionRegistry } from './map-registry'

const require = createRequire(__filename)
const { Floor } = require('./floor/floor.node') as {
  Floor: new () => {
    none(): void
    string(a: string): void
    twoStrings(a: string, b: string): void
    stringObject(a: string, b: unknown): void
  }
}

type Registry = Pick<
  NitySessionRegistry<BenchSession>,
  'register' | 'unregister' | 'cleanupClient' | 'getClientSessions' | 'getSession' | 'getStats' | 'cleanupStale'
>
type Impl = 'native' | 'map'
const IMPLS: Record<Impl, () => Registry> = {
  native: () => new NitySessionRegistry<BenchSession>(),
  map: () => new MapSessionRegistry<BenchSession>(),
}

const RESOLVED = Promise.resolve()
const HEALTHY: NitySessionHealth = { state: 'idle', errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: 0 }
const ERRORED: NitySessionHealth = { ...HEALTHY, state: 'error' }

/** A session whose close resolves at once. */
class BenchSession implements NitySessionHandle {
  health = HEALTHY
  constructor(readonly id: string) {}
  close(): Promise<void> {
    return RESOLVED
  }
  getHealth(): NitySessionHealth {
    return this.health
  }
  isRunning(): boolean {
    return false
  }
  async sendTask() {
    return { output: '' }
  }
}

/** Operations per timed iteration, so each sample is far above timer resolution. */
const BATCH = 1_000
const QUICK = process.argv.includes('--quick')
const TIME_MS = QUICK ? 100 : 400

/** Flat strings (join builds them flat), like ids that arrive off the wire. */
function sessionId(i: number): string {
  return ['session', i.toString(36), String((i * 2654435761) % 1e9)].join('-')
}
function clientId(i: number): string {
  return `client-${i}`
}

/** `count` sessions, `perClient` to a client, in registration order. */
function population(count: number, perClient: number): { clients: string[]; sessions: BenchSession[] } {
  const sessions = Array.from({ length: count }, (_, i) => new BenchSession(sessionId(i)))
  const clients = Array.from({ length: Math.ceil(count / perClient) }, (_, i) => clientId(i))
  return { clients, sessions }
}

function fill(registry: Registry, clients: string[], sessions: BenchSession[], perClient: number): void {
  sessions.forEach((s, i) => registry.register(clients[Math.floor(i / perClient)]!, s))
}

interface Row {
  op: string
  size: string
  ns: Record<Impl, number>
  floor?: number
}
const rows: Row[] = []

/** Median nanoseconds per call of `fn`, which makes `calls` calls per sample. */
async function time(name: string, fn: () => void, calls = BATCH): Promise<number> {
  const bench = new Bench({ time: TIME_MS, warmupIterations: 20, throws: true })
  bench.add(name, fn)
  await bench.run()
  const result = bench.tasks[0]!.result
  if (result.state !== 'completed') throw new Error(`${name}: ${result.state}`)
  return (result.latency.p50 * 1e6) / calls
}

/** Time one operation on both registries (prepared identically) and on the floor. */
async function measure(
  op: string,
  size: string,
  prepare: (registry: Registry) => () => void,
  floor?: () => void,
  calls = BATCH,
): Promise<void> {
  const ns = {} as Record<Impl, number>
  for (const impl of Object.keys(IMPLS) as Impl[]) {
    const registry = IMPLS[impl]()
    ns[impl] = await time(`${op} ${size} ${impl}`, prepare(registry), calls)
    await settle()
  }
  const row: Row = { op, size, ns }
  if (floor) row.floor = await time(`${op} floor`, floor, calls)
  rows.push(row)
  console.log(format(row))
}

/** Like `measure`, with untimed work before and after each sample. */
async function measureWith(
  op: string,
  size: string,
  prepare: (registry: Registry) => { run: () => void; before?: () => void; after?: () => void },
  floor: () => void,
): Promise<void> {
  const ns = {} as Record<Impl, number>
  for (const impl of Object.keys(IMPLS) as Impl[]) {
    const { run, before, after } = prepare(IMPLS[impl]())
    const bench = new Bench({ time: TIME_MS, warmupIterations: 20, throws: true })
    bench.add(`${op} ${size} ${impl}`, run, { beforeEach: before, afterEach: after })
    await bench.run()
    const result = bench.tasks[0]!.result
    if (result.state !== 'completed') throw new Error(`${op}: ${result.state}`)
    ns[impl] = (result.latency.p50 * 1e6) / BATCH
    await settle()
  }
  const row: Row = { op, size, ns, floor: await time(`${op} floor`, floor) }
  rows.push(row)
  console.log(format(row))
}

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
  globalThis.gc?.()
}

function batch(body: (i: number) => void, calls = BATCH): () => void {
  let i = 0
  return () => {
    for (let n = 0; n < calls; n++) body(i++)
  }
}

// ---------------------------------------------------------------------------

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`implementations disagree: ${what}`)
}

/** Before timing anything: both registries answer every operation alike. */
async function checkEquivalence(): Promise<void> {
  const { clients, sessions } = population(1_000, 10)
  const [native, map] = [IMPLS.native(), IMPLS.map()]
  for (const registry of [native, map]) fill(registry, clients, sessions, 10)
  const same = (what: string, f: (r: Registry) => unknown) =>
    check(JSON.stringify(f(native)) === JSON.stringify(f(map)), what)
  same('getStats', (r) => r.getStats())
  for (const s of [sessions[0]!, sessions[999]!])
    check(native.getSession(s.id) === map.getSession(s.id), 'getSession hit')
  check(native.getSession('missing') === map.getSession('missing'), 'getSession miss')
  for (const c of [clients[0]!, clients[99]!, 'nobody']) {
    const [a, b] = [native.getClientSessions(c), map.getClientSessions(c)]
    check(a.length === b.length && a.every((s, i) => s === b[i]), `getClientSessions ${c}`)
  }
  check((await native.unregister(sessions[5]!.id)) === (await map.unregister(sessions[5]!.id)), 'unregister')
  check((await native.unregister('missing')) === (await map.unregister('missing')), 'unregister miss')
  check((await native.cleanupClient(clients[1]!)) === (await map.cleanupClient(clients[1]!)), 'cleanupClient')
  check((await native.cleanupClient('nobody')) === (await map.cleanupClient('nobody')), 'cleanupClient miss')
  for (let i = 100; i < 1_000; i += 50) sessions[i]!.health = ERRORED
  check((await native.cleanupStale()) === (await map.cleanupStale()), 'cleanupStale count')
  same('getStats after cleanups', (r) => r.getStats())
  for (const s of sessions) s.health = HEALTHY
  console.log('equivalence: both registries gave the same results for every operation\n')
}

// ---------------------------------------------------------------------------

async function singleSessionCalls(size: number): Promise<void> {
  const label = size >= 1000 ? `${size / 1000}k` : `${size}`
  const floor = new Floor()
  for (const perClient of [1, 10]) {
    const { clients, sessions } = population(size, perClient)
    const hits = sessions.map((s) => s.id)
    const lookups = Array.from({ length: 4096 }, (_, i) => hits[(i * 7919) % hits.length]!)
    const clientLookups = Array.from({ length: 4096 }, (_, i) => clients[(i * 7919) % clients.length]!)
    const fresh = (registry: Registry) => {
      fill(registry, clients, sessions, perClient)
      return registry
    }
    if (perClient === 1) {
      const extra = Array.from({ length: BATCH }, (_, i) => new BenchSession(`extra-${i}`))
      await measureWith(
        'register',
        label,
        (r) => {
          const registry = fresh(r)
          return {
            run: () => {
              for (const s of extra) registry.register('extra-client', s)
            },
            // Untimed: take them out again; removal itself is synchronous.
            after: () => void registry.cleanupClient('extra-client'),
          }
        },
        batch((i) => floor.stringObject('extra-client', extra[i % BATCH]!)),
      )
      await measureWith(
        'unregister',
        label,
        (r) => {
          const registry = fresh(r)
          return {
            before: () => {
              for (const s of extra) registry.register('extra-client', s)
            },
            run: () => {
              for (const s of extra) void registry.unregister(s.id)
            },
          }
        },
        batch((i) => floor.string(extra[i % BATCH]!.id)),
      )
      await measure(
        'getSession hit',
        label,
        (r) => {
          const registry = fresh(r)
          return batch((i) => void registry.getSession(lookups[i & 4095]!))
        },
        batch((i) => floor.string(lookups[i & 4095]!)),
      )
      const misses = lookups.map((id) => `${id}-missing`)
      await measure(
        'getSession miss',
        label,
        (r) => {
          const registry = fresh(r)
          return batch((i) => void registry.getSession(misses[i & 4095]!))
        },
        batch((i) => floor.string(misses[i & 4095]!)),
      )
    }
    await measure(
      `getClientSessions (${perClient}/client)`,
      label,
      (r) => {
        const registry = fresh(r)
        return batch((i) => void registry.getClientSessions(clientLookups[i & 4095]!))
      },
      batch((i) => floor.string(clientLookups[i & 4095]!)),
    )
  }
}

async function stats(): Promise<void> {
  const floor = new Floor()
  for (const clientCount of [10, 1_000, 10_000]) {
    const { clients, sessions } = population(clientCount * 2, 2)
    // Fewer calls per sample as the answer grows, so samples stay short.
    const calls = Math.max(1, Math.floor(BATCH / clientCount) * 10)
    await measure(
      'getStats',
      `${clientCount.toLocaleString('en')} clients`,
      (registry) => {
        fill(registry, clients, sessions, 2)
        return batch(() => void registry.getStats(), calls)
      },
      batch(() => floor.none(), calls),
      calls,
    )
  }
}

async function bulk(
  op: string,
  size: string,
  run: (registry: Registry) => { refill: () => void; call: () => Promise<number> },
): Promise<void> {
  const ns = {} as Record<Impl, number>
  for (const impl of Object.keys(IMPLS) as Impl[]) {
    const { refill, call } = run(IMPLS[impl]())
    const bench = new Bench({ time: TIME_MS * 2, warmupIterations: 3, throws: true })
    bench.add(op, call, { beforeEach: refill })
    await bench.run()
    const result = bench.tasks[0]!.result
    if (result.state !== 'completed') throw new Error(`${op}: ${result.state}`)
    ns[impl] = result.latency.p50 * 1e6
    await settle()
  }
  const row = { op, size, ns }
  rows.push(row)
  console.log(format(row))
}

async function bulkCalls(): Promise<void> {
  await bulk('cleanupClient (close resolves at once)', '1,000 sessions', (registry) => {
    const sessions = Array.from({ length: 1_000 }, (_, i) => new BenchSession(`bulk-${i}`))
    let expected = 0
    return {
      refill: () => {
        for (const s of sessions) registry.register('leaving', s)
        expected = sessions.length
      },
      call: async () => {
        const n = await registry.cleanupClient('leaving')
        if (n !== expected) throw new Error(`cleanupClient removed ${n}`)
        return n
      },
    }
  })
  await bulk('cleanupStale (1% stale)', '100k sessions', (registry) => {
    const { clients, sessions } = population(100_000, 10)
    fill(registry, clients, sessions, 10)
    const doomed = sessions.filter((_, i) => i % 100 === 0)
    for (const s of doomed) s.health = ERRORED
    return {
      refill: () => {
        for (const s of doomed) if (registry.getSession(s.id) === undefined) registry.register('stale-client', s)
      },
      call: async () => {
        const n = await registry.cleanupStale()
        if (n !== doomed.length) throw new Error(`cleanupStale removed ${n}`)
        return n
      },
    }
  })
}

// ---------------------------------------------------------------------------

interface Memory {
  heapUsed: number
  external: number
  rss: number
}

/** Memory per session at 100k, each implementation in a fresh process. */
function memory(): Record<Impl, Memory> {
  const result = {} as Record<Impl, Memory>
  for (const impl of Object.keys(IMPLS) as Impl[]) {
    const output = execFileSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', join(__dirname, 'memory-probe.ts'), impl, '100000'],
      { encoding: 'utf8' },
    )
    result[impl] = JSON.parse(output.trim().split('\n').pop()!) as Memory
  }
  const line = (what: keyof Memory) =>
    `  ${what.padEnd(9)} native ${result.native[what].toFixed(0).padStart(5)} B   map ${result.map[what].toFixed(0).padStart(5)} B   ratio ${memoryRatio(result, what)}`
  console.log('\nmemory per registered session at 100k (after GC, deltas):')
  for (const what of ['heapUsed', 'external', 'rss'] as const) console.log(line(what))
  return result
}

/** native ÷ plain JS, or a dash when the plain-JS figure is under a byte. */
function memoryRatio(result: Record<Impl, Memory>, what: keyof Memory): string {
  return Math.abs(result.map[what]) < 1 ? '—' : `${(result.native[what] / result.map[what]).toFixed(2)}×`
}

/** The longest event-loop stall while a bulk call runs. */
async function stall(impl: Impl, what: 'cleanupStale' | 'cleanupClient'): Promise<number> {
  const registry = IMPLS[impl]()
  if (what === 'cleanupStale') {
    const { clients, sessions } = population(100_000, 10)
    fill(registry, clients, sessions, 10)
    sessions.forEach((s, i) => (s.health = i % 100 === 0 ? ERRORED : HEALTHY))
  } else {
    for (let i = 0; i < 10_000; i++) registry.register('leaving', new BenchSession(`leave-${i}`))
  }
  await settle()
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  // Give the monitor a first tick, then run the call and let it finish.
  await new Promise((resolve) => setTimeout(resolve, 5))
  await (what === 'cleanupStale' ? registry.cleanupStale() : registry.cleanupClient('leaving'))
  await new Promise((resolve) => setTimeout(resolve, 5))
  histogram.disable()
  return histogram.max / 1e6
}

// ---------------------------------------------------------------------------

function format(row: Row): string {
  const n = (v: number | undefined) =>
    v === undefined ? '—' : v >= 100_000 ? `${(v / 1e6).toFixed(2)} ms` : `${v.toFixed(0)} ns`
  const ratio = (a: number, b: number | undefined) => (b === undefined ? '—' : `${(a / b).toFixed(2)}×`)
  return [
    row.op.padEnd(40),
    row.size.padEnd(16),
    n(row.ns.native).padStart(10),
    n(row.ns.map).padStart(10),
    n(row.floor).padStart(9),
    ratio(row.ns.native, row.ns.map).padStart(8),
    ratio(row.ns.native, row.floor).padStart(8),
  ].join(' ')
}

function header(): string {
  return [
    'operation'.padEnd(40),
    'size'.padEnd(16),
    'native'.padStart(10),
    'plain JS'.padStart(10),
    'floor'.padStart(9),
    'vs JS'.padStart(8),
    'vs floor'.padStart(8),
  ].join(' ')
}

function markdownTable(): string {
  const n = (v: number | undefined) =>
    v === undefined ? '—' : v >= 100_000 ? `${(v / 1e6).toFixed(2)} ms` : `${v.toFixed(0)} ns`
  const ratio = (a: number, b: number | undefined) => (b === undefined ? '—' : `${(a / b).toFixed(2)}×`)
  return [
    '| operation | size | native | plain JS (Maps) | N-API floor | native ÷ plain JS | native ÷ floor |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.op} | ${r.size} | ${n(r.ns.native)} | ${n(r.ns.map)} | ${n(r.floor)} | ${ratio(r.ns.native, r.ns.map)} | ${ratio(r.ns.native, r.floor)} |`,
    ),
  ].join('\n')
}

/** benchmark/NOTES.md, the standing explanation of targets not met, goes under the numbers. */
function notes(): string {
  try {
    return `\n${readFileSync(join(__dirname, 'NOTES.md'), 'utf8')}`
  } catch {
    return ''
  }
}

function machine(): string {
  const rustc = (() => {
    try {
      return execFileSync('rustc', ['--version'], { encoding: 'utf8' }).trim()
    } catch {
      return 'rustc not found'
    }
  })()
  const cpu = cpus()
  return `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${platform()} ${arch()}, Node ${process.version}, ${rustc}`
}

async function main(): Promise<void> {
  if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc (npm run bench does)')
  console.log(`machine: ${machine()}\n`)
  await checkEquivalence()
  console.log(header())
  for (const size of [1_000, 100_000]) await singleSessionCalls(size)
  await stats()
  await bulkCalls()
  const mem = memory()
  const stalls = {
    cleanupStale: { native: await stall('native', 'cleanupStale'), map: await stall('map', 'cleanupStale') },
    cleanupClient: { native: await stall('native', 'cleanupClient'), map: await stall('map', 'cleanupClient') },
  }
  console.log('\nlongest event-loop stall (monitorEventLoopDelay max):')
  console.log(
    `  cleanupStale over 100k (1% stale): native ${stalls.cleanupStale.native.toFixed(1)} ms, plain JS ${stalls.cleanupStale.map.toFixed(1)} ms`,
  )
  console.log(
    `  cleanupClient of 10k sessions:     native ${stalls.cleanupClient.native.toFixed(1)} ms, plain JS ${stalls.cleanupClient.map.toFixed(1)} ms`,
  )

  const results = `# Benchmark results

Written by \`npm run bench\`${QUICK ? ' (--quick)' : ''} on ${new Date().toISOString().slice(0, 10)}.

Machine: ${machine()}.

Times are medians over samples of ${BATCH.toLocaleString('en')} calls each (bulk calls: one call per sample), in one
process and one run. "plain JS" is \`benchmark/map-registry.ts\`, the same API on \`Map\`s; the N-API floor is
\`benchmark/floor\`, methods of a napi-rs class that take the same argument types and do nothing. Both registries
were first checked to give the same results for every operation.

${markdownTable()}

## Memory per registered session at 100k sessions

Deltas after GC, each implementation in a fresh process (\`benchmark/memory-probe.ts\`); the session objects themselves
are allocated before the baseline.

| | native | plain JS | native ÷ plain JS |
| --- | ---: | ---: | ---: |
${(['heapUsed', 'external', 'rss'] as const).map((k) => `| ${k} | ${mem.native[k].toFixed(0)} B | ${mem.map[k].toFixed(0)} B | ${memoryRatio(mem, k)} |`).join('\n')}

## Longest event-loop stall

\`monitorEventLoopDelay\` maximum while the call runs to completion.

| | native | plain JS |
| --- | ---: | ---: |
| cleanupStale over 100k sessions, 1% stale | ${stalls.cleanupStale.native.toFixed(1)} ms | ${stalls.cleanupStale.map.toFixed(1)} ms |
| cleanupClient of 10k sessions | ${stalls.cleanupClient.native.toFixed(1)} ms | ${stalls.cleanupClient.map.toFixed(1)} ms |
${notes()}`
  writeFileSync(join(__dirname, 'RESULTS.md'), `${results.trimEnd()}\n${clusterSection()}`)
  console.log('\nwrote benchmark/RESULTS.md')
}

/** The section `npm run bench:cluster` wrote, kept as it is (its own run updates it). */
function clusterSection(): string {
  let previous = ''
  try {
    previous = readFileSync(join(__dirname, 'RESULTS.md'), 'utf8')
  } catch {
    return ''
  }
  const start = previous.indexOf('<!-- cluster -->')
  const end = previous.indexOf('<!-- /cluster -->')
  if (start === -1 || end < start) return ''
  return `\n${previous.slice(start, end + '<!-- /cluster -->'.length)}\n`
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
