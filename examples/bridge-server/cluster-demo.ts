/**
 * `npm run demo -- --cluster`: three bridge nodes, each a process of its
 * own, share one view of their sessions through Redis, and three editors
 * use them. One editor reconnects to another node and finds its sessions
 * there; one node is killed and the others reap it.
 *
 * It starts a redis-server of its own on a free loopback port (REDIS_URL
 * points it at an existing one instead) and stops everything it started,
 * by process id, when it ends.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { LocalRedis, redisServerInstalled } from './local-redis'

const WIDTH = 80
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const clip = (text: string) => (text.length <= WIDTH ? text : `${text.slice(0, WIDTH - 1)}…`)
const started = Date.now()
let quiet = false
const say = (text: string) => {
  if (!quiet) console.log(clip(`${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s  ${text}`))
}

/** Redis: REDIS_URL, or a redis-server of the demo's own. */
async function startRedis(): Promise<{ url: string; local?: LocalRedis }> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL }
  if (!redisServerInstalled()) {
    console.error(
      'The cluster demo needs Redis: install redis-server (Debian and Ubuntu: apt-get install redis-server),\n' +
        'or point REDIS_URL at a running one (REDIS_URL=redis://127.0.0.1:6379/0 npm run demo -- --cluster).',
    )
    process.exit(2)
  }
  const local = await LocalRedis.start()
  return { url: local.url, local }
}

interface BridgeNode {
  id: string
  url: string
  process: ChildProcess
  /** The node-down news it heard: node id and how many sessions went with it. */
  heard: Array<{ nodeId: string; sessions: number }>
}

async function startNode(redis: string, id: string): Promise<BridgeNode> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'cluster-node.ts'), redis, id], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const node: BridgeNode = { id, url: '', process: child, heard: [] }
  const lines = createInterface({ input: child.stdout! })
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${id} exited (${code}) before listening`)))
    lines.on('line', (line) => {
      let event: { kind: string; url?: string; event?: { nodeId: string; sessions: number } }
      try {
        event = JSON.parse(line)
      } catch {
        return
      }
      if (event.kind === 'listening' && event.url) {
        node.url = event.url
        resolve()
      }
      if (event.kind === 'node-down' && event.event) {
        node.heard.push(event.event)
        say(`${id} heard: ${event.event.nodeId} is gone, ${event.event.sessions} session(s) with it`)
      }
    })
  })
  return node
}

async function editor(url: string, name: string) {
  const client = new Client({ name, version: '1.0.0' })
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { 'x-nity-client': `${name}@demo` } },
  })
  await client.connect(transport)
  const call = async (tool: string, args: Record<string, unknown> = {}): Promise<string> => {
    const result = await client.callTool({ name: tool, arguments: args })
    return (result.content as { text: string }[]).map((part) => part.text).join('')
  }
  return { client, transport, call }
}

function fleetLine(stats: { sessionsByNode: Record<string, number>; nodes: Array<{ nodeId: string }> }): string {
  const nodes = stats.nodes.map((n) => `${n.nodeId}: ${stats.sessionsByNode[n.nodeId] ?? 0}`).join('   ')
  return `fleet  ${nodes}`
}

export async function clusterDemo(): Promise<void> {
  const redis = await startRedis()
  const nodes: BridgeNode[] = []
  try {
    say(`redis at ${redis.url}`)
    for (const id of ['bridge-1', 'bridge-2', 'bridge-3']) {
      nodes.push(await startNode(redis.url, id))
      say(`${id} listening on ${nodes.at(-1)!.url}`)
    }
    const [one, two, three] = nodes as [BridgeNode, BridgeNode, BridgeNode]
    const watch = await editor(two.url, 'fleet-view')
    const fleet = async () => JSON.parse(await watch.call('fleet_stats'))
    // The live view: the sessions per node, a line each time they change.
    let shown = ''
    const show = async () => {
      const line = fleetLine(await fleet())
      if (line !== shown) {
        shown = line
        say(line)
      }
    }
    let viewing = true
    const view = (async () => {
      while (viewing) {
        await show().catch(() => {})
        await sleep(150)
      }
    })()

    const kilo = await editor(one.url, 'kilo-code')
    const cursor = await editor(one.url, 'cursor')
    const vscode = await editor(two.url, 'vscode')
    say('kilo-code and cursor connect to bridge-1, vscode to bridge-2')
    await Promise.all([
      kilo.call('send_task', { taskType: 'summarize', prompt: 'a first note' }),
      cursor.call('send_task', { taskType: 'find-todos', prompt: '// TODO: check the lease' }),
      vscode.call('send_task', { taskType: 'summarize', prompt: 'another note' }),
    ])
    await sleep(300)
    await show()

    say('cursor loses its connection to bridge-1 and reconnects to bridge-3')
    await cursor.client.close()
    const cursorAgain = await editor(three.url, 'cursor')
    const found = JSON.parse(await cursorAgain.call('my_sessions')) as Array<{ sessionId: string; nodeId: string }>
    say(
      `cursor on bridge-3 finds ${found.length} session(s): ${found.map((s) => `${s.sessionId} on ${s.nodeId}`).join(', ')}`,
    )
    await cursorAgain.call('send_task', { taskType: 'summarize', prompt: 'work on bridge-3 now' })
    await sleep(300)
    await show()

    say('bridge-1 is killed (SIGKILL): no goodbye, its lease runs out')
    const killed = Date.now()
    one.process.kill('SIGKILL')
    const heard = () =>
      two.heard.some((e) => e.nodeId === 'bridge-1') && three.heard.some((e) => e.nodeId === 'bridge-1')
    while (!heard() && Date.now() - killed < 10_000) await sleep(50)
    say(`reaped ${((Date.now() - killed) / 1000).toFixed(1)} s after the kill (lease 1.5 s)`)
    await show()
    viewing = false
    await view

    const summary = await fleet().catch(() => undefined)
    for (const each of [cursorAgain, vscode, watch]) {
      await each.transport.terminateSession().catch(() => {})
      await each.client.close()
    }
    await kilo.client.close().catch(() => {})
    // What the nodes say while the demo stops them is not part of the story.
    quiet = true

    console.log('\nsummary')
    console.log(
      `  nodes alive:        ${nodes
        .filter((n) => n.process.exitCode === null && n !== one)
        .map((n) => n.id)
        .join(', ')}`,
    )
    console.log(`  cursor found:       ${found.length} session(s) from bridge-1 on bridge-3`)
    console.log(`  bridge-1 reaped:    ${heard() ? 'yes, heard by bridge-2 and bridge-3' : 'no'}`)
    if (summary) console.log(`  sessions at the end: ${summary.totalSessions} (${fleetLine(summary).slice(7)})`)
    console.log(`  took:               ${((Date.now() - started) / 1000).toFixed(1)} s`)
  } finally {
    for (const node of nodes) {
      if (node.process.exitCode === null && node.process.signalCode === null) {
        const gone = new Promise((resolve) => node.process.once('exit', resolve))
        node.process.kill('SIGTERM')
        await Promise.race([gone, sleep(3_000)])
        if (node.process.exitCode === null && node.process.signalCode === null) node.process.kill('SIGKILL')
      }
    }
    await redis.local?.kill()
  }
}
