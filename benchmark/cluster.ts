/**
 * `npm run bench:cluster`: the cluster mode against a local redis-server of
 * its own, with three node processes. Prints a table next to what the
 * Vision Agents registry's design implies (5 s polling, two round trips per
 * session per refresh, SCAN per lookup) and writes the figures into
 * benchmark/RESULTS.md, between the cluster markers.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LocalRedis } from '../examples/bridge-server/local-redis'

const NODE = join(__dirname, 'cluster-node.mjs')
const RESULTS = join(__dirname, 'RESULTS.md')
const QUICK = process.argv.includes('--quick')

/** Commands `redis` served so far, from INFO commandstats. */
function commandsServed(redis: LocalRedis): number {
  let total = 0
  for (const match of redis.cli('INFO', 'commandstats').matchAll(/calls=(\d+)/g)) total += Number(match[1])
  return total
}

class Node {
  private next = 0
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  readonly process: ChildProcess
  readonly started: Promise<void>

  constructor(url: string, id: string) {
    this.process = fork(NODE, [url, id], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.started = new Promise((resolve) => {
      this.process.on(
        'message',
        (message: { ready?: boolean; id: number; ok: boolean; value: unknown; error: string }) => {
          if (message.ready) return resolve()
          const waiting = this.waiting.get(message.id)
          this.waiting.delete(message.id)
          if (message.ok) waiting?.resolve(message.value)
          else waiting?.reject(new Error(message.error))
        },
      )
    })
  }

  call<T>(command: string, ...args: unknown[]): Promise<T> {
    const id = this.next++
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.process.send({ id, command, args })
    })
  }

  stop(): void {
    this.process.kill('SIGKILL')
  }
}

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!
}

const ms = (value: number): string => (value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(0)} ms`)

async function atRest(redis: LocalRedis, seconds: number): Promise<number> {
  const before = commandsServed(redis)
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
  // INFO itself is one command per reading.
  return (commandsServed(redis) - before - 1) / seconds / 3
}

async function main(): Promise<void> {
  const redis = await LocalRedis.start()
  const url = redis.url
  const [a, b, c] = ['node-a', 'node-b', 'node-c'].map((id) => new Node(url, id)) as [Node, Node, Node]
  try {
    for (const node of [a, b, c]) {
      await node.started
      await node.call('ready')
    }
    const rounds = QUICK ? 50 : 200

    // A local register on A, visible to B's cluster.getSession.
    const visible: number[] = []
    for (let i = 0; i < rounds; i++) {
      const seen = b.call<number>('awaitVisible', `v-${i}`)
      const registered = await a.call<number>('register', `v-${i}`, 'visibility')
      visible.push((await seen) - registered)
    }

    const lookups = await b.call<number[]>('timeLookups', 'v-0', rounds * 5)

    // cluster.unregister on B of sessions A holds, whose close resolves at once.
    const ids = Array.from({ length: rounds }, (_, i) => `v-${i}`)
    const unregisters = await b.call<number[]>('timeUnregisters', ids)

    const restSmall = await atRest(redis, QUICK ? 2 : 5)
    const published = await c.call<{ took: number; stallMs: number; baselineStallMs: number }>(
      'publish',
      100_000,
      'p-',
      'bulk',
    )
    const restLarge = await atRest(redis, QUICK ? 2 : 5)

    // Redis restarts empty; every live session must come back. Counted with
    // HLEN from here (every record is a live node's; the one field '' is the
    // nodes' markers, not a record), which costs Redis nothing next to the
    // re-assertion it watches.
    const total = (await a.call<{ totalSessions: number }>('stats')).totalSessions
    await redis.restart()
    const restarted = performance.now()
    let recovery = Number.POSITIVE_INFINITY
    while (performance.now() - restarted < 30_000) {
      const fields = Number(redis.cli('HLEN', 'nity:{bench}:sessions').trim())
      const markers = Number(redis.cli('HEXISTS', 'nity:{bench}:sessions', '').trim())
      if (fields - markers === total) {
        recovery = performance.now() - restarted
        break
      }
      await new Promise((resolve) => setTimeout(resolve, 5))
    }

    const rows: Array<[string, string, string, string]> = [
      [
        'a local register visible to another node (p99)',
        ms(p99(visible)),
        'under 5 ms',
        'written at once: 1 round trip',
      ],
      ['cluster.getSession (p99)', ms(p99(lookups)), 'under 1 ms', 'SCAN of the whole keyspace'],
      [
        'cluster.unregister on another node, close at once (p99)',
        ms(p99(unregisters)),
        'under 5 ms',
        'close requests polled every 5 s: up to 5,000 ms',
      ],
      ['publication of 100k local registrations', ms(published.took), 'under 1 s', '100k writes'],
      [
        'Redis commands per node per second at rest, 10 sessions',
        restSmall.toFixed(1),
        'same at 10 and 100k',
        '2 per session per 5 s: 4',
      ],
      [
        'Redis commands per node per second at rest, 100k sessions',
        restLarge.toFixed(1),
        'same at 10 and 100k',
        '2 per session per 5 s: 40,000',
      ],
      [
        `longest event-loop stall while registering 100k (without cluster: ${ms(published.baselineStallMs)})`,
        ms(published.stallMs),
        'under 10 ms from cluster work',
        '—',
      ],
      [
        `every live session visible again after Redis restarts empty (${total})`,
        ms(recovery),
        'within 1 s',
        'lost until re-registered',
      ],
    ]
    const width = Math.max(...rows.map((r) => r[0].length))
    console.log(`\n${'measure'.padEnd(width)}  ${'this registry'.padStart(14)}  goal`)
    for (const [what, value, goal] of rows) console.log(`${what.padEnd(width)}  ${value.padStart(14)}  ${goal}`)

    const table = [
      '| measure | this registry | goal | Vision Agents, by design |',
      '| --- | ---: | --- | --- |',
      ...rows.map(([what, value, goal, theirs]) => `| ${what} | ${value} | ${goal} | ${theirs} |`),
    ].join('\n')
    const section = [
      '<!-- cluster -->',
      '## Cluster mode',
      '',
      `Written by \`npm run bench:cluster\`${QUICK ? ' (--quick)' : ''} on ${new Date().toISOString().slice(0, 10)}: a local`,
      '`redis-server`, three node processes (lease 3 s), sessions whose close resolves at once. The right-hand column is',
      "what the Vision Agents registry's design implies (5 s polling, two round trips per session per refresh, SCAN per",
      'lookup), not a measurement of it.',
      '',
      table,
      '',
      'Notes (written by hand, kept by the script):',
      '',
      '- At rest a node sends a heartbeat every third of the lease and a reap every quarter lease, at most 400 ms',
      '  apart: about 27 commands a second with the 3 s lease (commands the scripts run count too: each write script',
      "  notes the namespace clock, and each heartbeat checks the markers of the keys holding the node's records);",
      '  the count does not grow with the sessions held. It was about 17 before the anti-entropy digest.',
      '- Publication and re-assertion are bounded by how fast Redis runs the scripts: about 70-85k records a second',
      '  on this machine, in batches of 512 sent eight at a time. Keeping the digest (a SHA-1 of each record in the',
      '  same script) costs about 15-20%: in one back-to-back run on the same machine the previous version published',
      '  100k in 1.16 s and this one in 1.37 s. After a restart the node resyncs instead of only re-adding (a walk of',
      '  its index entries first, then every record counted into the digest): 1.8 s for 100k against 1.1 s before,',
      '  so the 1 s goal is missed above some 50k sessions per namespace here.',
      '- The event-loop stall while registering 100k sessions moves between about 15 and 35 ms from run to run, and the',
      '  same loop without the cluster option stalls about as long (the registering and the garbage collector): the',
      "  publication runs on napi-rs's tokio threads, which share the two cores with Redis and the other node",
      "  processes here. The cluster's own share could not be measured apart; the 10 ms goal is not shown to hold.",
      '<!-- /cluster -->',
    ].join('\n')
    const results = readFileSync(RESULTS, 'utf8')
    const start = results.indexOf('<!-- cluster -->')
    const end = results.indexOf('<!-- /cluster -->')
    const updated =
      start === -1
        ? `${results.trimEnd()}\n\n${section}\n`
        : `${results.slice(0, start)}${section}${results.slice(end + '<!-- /cluster -->'.length)}`
    writeFileSync(RESULTS, updated)
    console.log('\nwrote benchmark/RESULTS.md (cluster section)')
    for (const node of [a, b, c]) await node.call('dispose').catch(() => {})
  } finally {
    for (const node of [a, b, c]) node.stop()
    await redis.kill()
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
