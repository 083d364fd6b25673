/**
 * A bridge server that editor tools (Kilo Code, Cursor, VS Code) connect to
 * over the Model Context Protocol at the same time: the seed document's
 * "Server Example" made real. Each MCP session is a registry client; its
 * Nity sessions are created on demand, reused while healthy, health-checked
 * by the registry's automatic stale cleanup, closed when the client says
 * goodbye, and closed as idle when it silently goes away.
 *
 * Copy this file (and local-session.ts) as the start of your own server:
 * replace LocalSession with `createNitySession` from the Bridge SDK.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import {
  type NityClusterOptions,
  type NityNodeDownEvent,
  NitySessionRegistry,
  type NitySessionClock,
  type NitySessionClosedEvent,
} from 'nity-session-registry'
import { LocalSession, TASK_TYPES } from './local-session'

export interface BridgeServerOptions {
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number
  /** Sessions unused this long (and not running) are closed as idle (default 60 s). */
  idleTimeoutMs?: number
  /** How often the stale cleanup runs (default 15 s). */
  cleanupIntervalMs?: number
  /** How long one task may run (default 5 s). */
  taskTimeoutMs?: number
  /** Most sessions one editor may hold (default 4). */
  maxSessionsPerClient?: number
  /** The registry's clock, for tests. */
  clock?: NitySessionClock
  /** Told about everything that happens, for logs and the demo's live view. */
  onEvent?: (event: BridgeEvent) => void
  /**
   * Join a fleet of bridge servers on Redis (the registry's cluster mode).
   * An editor that sends an `x-nity-client` header on its first request is
   * that client wherever it connects, so it finds its sessions on any node.
   */
  cluster?: NityClusterOptions
}

export type BridgeEvent =
  | { kind: 'connected'; clientId: string; editor: string }
  | { kind: 'disconnected'; clientId: string; cleaned: number }
  | { kind: 'dropped'; clientId: string }
  | { kind: 'task-started'; clientId: string; sessionId: string; taskType: string }
  | { kind: 'task-done'; clientId: string; sessionId: string; taskType: string; ok: boolean; output: string }
  | { kind: 'busy'; clientId: string }
  | { kind: 'session-closed'; event: NitySessionClosedEvent }
  | { kind: 'node-down'; event: NityNodeDownEvent }

export interface BridgeServer {
  /** Where editors connect: put this in their MCP settings. */
  url: string
  registry: NitySessionRegistry<LocalSession>
  /** The registry client id of each connected MCP session. */
  clients(): Map<string, string>
  close(): Promise<void>
}

interface Connection {
  transport: StreamableHTTPServerTransport
  clientId: string
  /** When the editor last sent a request, on the registry's clock. */
  lastRequest: number
}

export async function startBridgeServer(options: BridgeServerOptions = {}): Promise<BridgeServer> {
  const emit = options.onEvent ?? (() => {})
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000
  const now = () => options.clock?.now() ?? Date.now()
  const connections = new Map<string, Connection>()
  const registry = new NitySessionRegistry<LocalSession>({
    cleanupIntervalMs: options.cleanupIntervalMs ?? 15_000,
    idleTimeoutMs,
    maxSessionsPerClient: options.maxSessionsPerClient ?? 4,
    clock: options.clock,
    cluster: options.cluster,
    onSessionClosed: (event) => {
      emit({ kind: 'session-closed', event })
      if (event.reason === 'idle') forgetSilentClient(event.clientId)
    },
  })
  if (registry.cluster !== undefined) {
    await registry.cluster.ready()
    registry.cluster.onNodeDown((event) => emit({ kind: 'node-down', event }))
  }

  /**
   * An editor that vanished without a goodbye leaves its MCP session behind
   * too. Once its last Nity session is closed as idle and it has sent
   * nothing for as long, the MCP session is closed as well (an editor that
   * comes back simply connects again).
   */
  function forgetSilentClient(clientId: string): void {
    if (registry.getClientSessions(clientId).length > 0) return
    for (const [id, connection] of connections) {
      if (connection.clientId === clientId && now() - connection.lastRequest > idleTimeoutMs) {
        connections.delete(id)
        void connection.transport.close()
        emit({ kind: 'dropped', clientId })
      }
    }
  }

  // The seed document's handlers, made real.
  function onClientConnect(clientId: string): LocalSession {
    const session = new LocalSession(clientId, { taskTimeoutMs: options.taskTimeoutMs })
    registry.register(clientId, session)
    return session
  }

  async function onClientDisconnect(clientId: string): Promise<number> {
    const cleaned = await registry.cleanupClient(clientId)
    emit({ kind: 'disconnected', clientId, cleaned })
    return cleaned
  }

  /** The client's first healthy idle session, as in the seed's getHealthySession. */
  function getHealthySession(clientId: string): LocalSession | null {
    for (const session of registry.getClientSessions(clientId)) {
      const health = session.getHealth()
      if (!health.isTimedOut && health.state !== 'error' && !session.isRunning()) return session
    }
    return null
  }

  async function handleTask(clientId: string, taskType: string, prompt: string): Promise<string> {
    let session = getHealthySession(clientId)
    if (session === null) {
      const sessions = registry.getClientSessions(clientId)
      const healthy = sessions.filter((s) => s.getHealth().state !== 'error' && !s.getHealth().isTimedOut)
      if (healthy.length > 0) {
        emit({ kind: 'busy', clientId })
        throw new Error('Session is busy')
      }
      session = onClientConnect(clientId)
    }
    emit({ kind: 'task-started', clientId, sessionId: session.id, taskType })
    try {
      const result = await session.sendTask(taskType, prompt)
      // The session was busy until now: its idle time starts here.
      registry.touch(session.id)
      emit({ kind: 'task-done', clientId, sessionId: session.id, taskType, ok: true, output: result.output })
      return result.output
    } catch (error) {
      registry.touch(session.id)
      const output = error instanceof Error ? error.message : String(error)
      emit({ kind: 'task-done', clientId, sessionId: session.id, taskType, ok: false, output })
      throw error
    }
  }

  /** One MCP server per MCP session; its tools act for that session's client. */
  function mcpServerFor(connection: () => Connection | undefined): McpServer {
    const server = new McpServer({ name: 'nity-bridge', version: '0.1.0' })
    const clientOf = () => {
      const current = connection()
      if (current === undefined) throw new Error('this MCP session is gone')
      return current.clientId
    }
    const text = (value: string, isError = false) => ({ content: [{ type: 'text' as const, text: value }], isError })
    server.registerTool(
      'send_task',
      {
        description: `Run a task on one of your Nity sessions (${TASK_TYPES.join(', ')}).`,
        inputSchema: { taskType: z.enum(TASK_TYPES as [string, ...string[]]), prompt: z.string() },
      },
      async ({ taskType, prompt }) => {
        try {
          return text(await handleTask(clientOf(), taskType, prompt))
        } catch (error) {
          return text(error instanceof Error ? error.message : String(error), true)
        }
      },
    )
    server.registerTool('session_health', { description: 'Health of your Nity sessions.' }, async () => {
      const sessions = registry.getClientSessions(clientOf())
      return text(JSON.stringify(sessions.map((s) => ({ id: s.id, ...s.getHealth() }))))
    })
    server.registerTool('registry_stats', { description: 'Sessions per client across the bridge.' }, async () =>
      text(JSON.stringify({ ...registry.getStats(), metrics: registry.getMetrics() })),
    )
    const cluster = registry.cluster
    if (cluster !== undefined) {
      server.registerTool(
        'my_sessions',
        { description: 'Your Nity sessions on every bridge node of the fleet.' },
        async () => text(JSON.stringify(await cluster.getClientSessions(clientOf()))),
      )
      server.registerTool(
        'fleet_stats',
        { description: 'Sessions per node and per client across the fleet.' },
        async () => text(JSON.stringify({ ...(await cluster.getStats()), nodes: await cluster.nodes() })),
      )
    }
    return server
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/mcp') {
      res.writeHead(404).end('not found: the MCP endpoint is /mcp')
      return
    }
    const body = req.method === 'POST' ? await readJson(req) : undefined
    const sessionId = req.headers['mcp-session-id']
    const existing = typeof sessionId === 'string' ? connections.get(sessionId) : undefined
    if (existing !== undefined) {
      existing.lastRequest = now()
      await existing.transport.handleRequest(req, res, body)
      return
    }
    if (sessionId !== undefined || req.method !== 'POST' || !isInitializeRequest(body)) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }))
      return
    }
    let connection: Connection | undefined
    const editor = readEditor(body)
    const stable = req.headers['x-nity-client']
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        const clientId =
          registry.cluster !== undefined && typeof stable === 'string' && /^[\w.@-]{1,80}$/.test(stable)
            ? stable
            : `${editor}/${id.slice(0, 8)}`
        connection = { transport, clientId, lastRequest: now() }
        connections.set(id, connection)
        emit({ kind: 'connected', clientId: connection.clientId, editor })
      },
      // The client said goodbye (HTTP DELETE): close its sessions now.
      onsessionclosed: async (id) => {
        const gone = connections.get(id)
        connections.delete(id)
        if (gone !== undefined) await onClientDisconnect(gone.clientId)
      },
    })
    await mcpServerFor(() => connection).connect(transport)
    await transport.handleRequest(req, res, body)
  }

  const http: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error))
    })
  })
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject)
    http.listen(options.port ?? 0, '127.0.0.1', () => resolve())
  })
  const { port } = http.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}/mcp`,
    registry,
    clients: () => new Map([...connections].map(([id, c]) => [id, c.clientId])),
    async close() {
      for (const { transport } of connections.values()) await transport.close()
      connections.clear()
      await registry.dispose()
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}

function readEditor(body: unknown): string {
  const name = (body as { params?: { clientInfo?: { name?: unknown } } }).params?.clientInfo?.name
  return typeof name === 'string' && /^[\w.-]{1,40}$/.test(name) ? name : 'editor'
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > 1_000_000) throw new Error('request too large')
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  return text === '' ? undefined : JSON.parse(text)
}
