/**
 * `npm run demo`: the bridge server with three simulated editors (MCP SDK
 * clients named kilo-code, cursor and vscode) that connect, send tasks in
 * parallel, hit a busy session, let a task time out, drop a connection
 * without a goodbye and reconnect. A live view shows it as it happens; a
 * summary ends it. Finishes by itself in well under a minute.
 *
 * `npm run demo -- --serve [--port N]` only starts the server and prints
 * the URL to put in an editor's MCP settings.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startBridgeServer, type BridgeEvent, type BridgeServer } from './server'

const args = process.argv.slice(2)
const serve = args.includes('--serve')
const portArg = args.indexOf('--port')
const port = portArg >= 0 ? Number(args[portArg + 1]) : 0
const WIDTH = 80

interface ClientRow {
  sessions: number
  running: number
  done: number
  failed: number
  busy: number
}

/** What the live view shows, fed by the server's events. */
class LiveView {
  private readonly started = Date.now()
  private readonly rows = new Map<string, ClientRow>()
  private readonly recent: string[] = []
  private drawn = 0
  private timer: NodeJS.Timeout | undefined
  step = 'starting'

  constructor(
    private readonly server: () => BridgeServer | undefined,
    private readonly live: boolean,
  ) {}

  record = (event: BridgeEvent): void => {
    const row = (clientId: string) => {
      let found = this.rows.get(clientId)
      if (found === undefined) {
        found = { sessions: 0, running: 0, done: 0, failed: 0, busy: 0 }
        this.rows.set(clientId, found)
      }
      return found
    }
    switch (event.kind) {
      case 'connected':
        row(event.clientId)
        this.note(`${event.clientId} connected`)
        break
      case 'disconnected':
        this.note(`${event.clientId} said goodbye: ${event.cleaned} session(s) closed`)
        break
      case 'dropped':
        this.note(`${event.clientId} went silent: its MCP session is closed`)
        break
      case 'task-started':
        row(event.clientId).running += 1
        break
      case 'task-done': {
        const r = row(event.clientId)
        r.running -= 1
        if (event.ok) r.done += 1
        else r.failed += 1
        this.note(`${event.clientId} ${event.taskType}: ${event.output.split('\n')[0]}`)
        break
      }
      case 'busy':
        row(event.clientId).busy += 1
        this.note(`${event.clientId}: Session is busy`)
        break
      case 'session-closed':
        this.note(`closed ${event.event.sessionId} (${event.event.reason})`)
        break
    }
  }

  private note(text: string): void {
    const at = ((Date.now() - this.started) / 1000).toFixed(1).padStart(5)
    this.recent.push(clip(`${at}s  ${text}`))
    if (this.recent.length > 6) this.recent.shift()
    if (!this.live) console.log(clip(`${at}s  ${text}`))
  }

  start(): void {
    if (this.live) this.timer = setInterval(() => this.draw(), 100)
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    if (this.live) this.draw()
  }

  private lines(): string[] {
    const server = this.server()
    const stats = server?.registry.getStats()
    const metrics = server?.registry.getMetrics()
    const elapsed = ((Date.now() - this.started) / 1000).toFixed(1)
    const lines = [
      clip(`nity bridge demo  ${server?.url ?? ''}`.padEnd(WIDTH - 8) + `${elapsed}s`.padStart(8)),
      clip(`step: ${this.step}`),
      '',
      'client                    sessions  running   done  failed  busy',
    ]
    for (const [clientId, row] of this.rows) {
      const sessions = stats?.sessionsByClient[clientId] ?? 0
      lines.push(
        `${clientId.padEnd(24).slice(0, 24)}  ${String(sessions).padStart(8)}  ${String(row.running).padStart(7)}` +
          `  ${String(row.done).padStart(5)}  ${String(row.failed).padStart(6)}  ${String(row.busy).padStart(4)}`,
      )
    }
    const by = metrics?.closesByReason
    lines.push(
      '',
      clip(`sessions ${stats?.totalSessions ?? 0} across ${stats?.activeClients ?? 0} clients`),
      clip(
        `closes: cleanupClient ${by?.cleanupClient ?? 0}  cleanupStale ${by?.cleanupStale ?? 0}` +
          `  idle ${by?.idle ?? 0}  shutdown ${by?.shutdown ?? 0}`,
      ),
      '',
      'recent:',
      ...this.recent.map((line) => `  ${line}`.slice(0, WIDTH)),
    )
    return lines
  }

  private draw(): void {
    const lines = this.lines()
    // Back to the top of the previous frame, clear it, draw this one.
    const up = this.drawn > 0 ? `\x1b[${this.drawn}F\x1b[J` : ''
    process.stdout.write(`${up + lines.join('\n')}\n`)
    this.drawn = lines.length
  }

  summary(): string[] {
    const server = this.server()
    const metrics = server?.registry.getMetrics()
    const totals = [...this.rows.values()].reduce(
      (sum, row) => ({ done: sum.done + row.done, failed: sum.failed + row.failed, busy: sum.busy + row.busy }),
      { done: 0, failed: 0, busy: 0 },
    )
    const by = metrics?.closesByReason
    return [
      '',
      'summary',
      `  editors connected:   ${this.rows.size}`,
      `  tasks done:          ${totals.done}`,
      `  tasks failed:        ${totals.failed} (including the one that timed out)`,
      `  busy answers:        ${totals.busy}`,
      `  sessions registered: ${metrics?.sessionsRegistered ?? 0}`,
      `  sessions closed:     ${metrics?.sessionsClosed ?? 0} (goodbye ${by?.cleanupClient ?? 0}, stale ${by?.cleanupStale ?? 0}, ` +
        `idle ${by?.idle ?? 0}, shutdown ${by?.shutdown ?? 0})`,
      `  took:                ${((Date.now() - this.started) / 1000).toFixed(1)} s`,
    ]
  }
}

function clip(text: string): string {
  return text.length <= WIDTH ? text : `${text.slice(0, WIDTH - 1)}…`
}

async function editor(url: string, name: string) {
  const client = new Client({ name, version: '1.0.0' })
  const transport = new StreamableHTTPClientTransport(new URL(url))
  await client.connect(transport)
  const task = async (taskType: string, prompt: string): Promise<string> => {
    const result = await client.callTool({ name: 'send_task', arguments: { taskType, prompt } })
    return (result.content as { text: string }[]).map((part) => part.text).join('')
  }
  return { client, transport, task }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor(condition: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms
  while (!condition() && Date.now() < until) await sleep(50)
  return condition()
}

const SNIPPET = `function load(path) {
  // TODO: cache the parsed file
  const text = read(path)
  return parse(text) // FIXME: handle errors
}`

async function scenario(server: BridgeServer, view: LiveView): Promise<void> {
  view.step = 'three editors connect'
  const kilo = await editor(server.url, 'kilo-code')
  const cursor = await editor(server.url, 'cursor')
  const vscode = await editor(server.url, 'vscode')

  view.step = 'tasks in parallel from every editor'
  await Promise.all([
    kilo.task('summarize', SNIPPET),
    cursor.task('find-todos', SNIPPET),
    vscode.task('summarize', 'a short note'),
    kilo.task('find-todos', '// TODO: one\n// TODO: two'),
  ])
  await sleep(500)

  view.step = 'kilo-code drops its connection without a goodbye'
  await kilo.client.close()
  await sleep(300)

  view.step = 'cursor starts a long task, then asks again: busy'
  const long = cursor.task('wait', '1200')
  await sleep(200)
  await cursor.task('summarize', 'while busy')
  await long

  view.step = 'a vscode task runs past its 2 s time limit'
  await vscode.task('wait', '3000')
  view.step = 'the stale cleanup closes the timed-out session'
  await waitFor(() => server.registry.getMetrics().closesByReason.cleanupStale >= 1, 5_000)
  await vscode.task('summarize', 'a fresh session after the timeout')

  view.step = 'the idle timeout closes what kilo-code left behind'
  await waitFor(() => server.registry.getMetrics().closesByReason.idle >= 1, 15_000)
  await sleep(300)

  view.step = 'cursor says goodbye and reconnects'
  await cursor.task('summarize', 'one last thing before leaving')
  await cursor.transport.terminateSession()
  await cursor.client.close()
  await sleep(300)
  const cursor2 = await editor(server.url, 'cursor')
  await cursor2.task('find-todos', SNIPPET)
  await sleep(300)

  view.step = 'the remaining editors say goodbye'
  for (const remaining of [vscode, cursor2]) {
    await remaining.transport.terminateSession()
    await remaining.client.close()
  }
  await waitFor(() => server.registry.getStats().totalSessions === 0, 5_000)
  view.step = 'done'
  await sleep(200)
}

async function main(): Promise<void> {
  if (args.includes('--cluster')) {
    const { clusterDemo } = await import('./cluster-demo.js')
    await clusterDemo()
    return
  }
  if (serve) {
    const server = await startBridgeServer({
      port,
      onEvent: (event) => {
        if (event.kind === 'connected') console.log(`${event.clientId} connected`)
        if (event.kind === 'disconnected')
          console.log(`${event.clientId} disconnected, cleaned ${event.cleaned} sessions`)
        if (event.kind === 'dropped') console.log(`${event.clientId} went silent; its MCP session is closed`)
        if (event.kind === 'session-closed') console.log(`closed ${event.event.sessionId} (${event.event.reason})`)
      },
    })
    console.log(`nity bridge server listening on ${server.url}`)
    console.log("Add it to your editor's MCP settings as a Streamable HTTP server (see the README).")
    console.log('Press Ctrl+C to stop.')
    const stop = async () => {
      await server.close()
      process.exit(0)
    }
    process.on('SIGINT', () => void stop())
    process.on('SIGTERM', () => void stop())
    return
  }
  let server: BridgeServer | undefined
  const view = new LiveView(() => server, process.stdout.isTTY === true)
  server = await startBridgeServer({
    idleTimeoutMs: 3_000,
    cleanupIntervalMs: 500,
    taskTimeoutMs: 2_000,
    onEvent: view.record,
  })
  view.start()
  try {
    await scenario(server, view)
  } finally {
    view.stop()
    const lines = view.summary()
    await server.close()
    console.log(lines.join('\n'))
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
