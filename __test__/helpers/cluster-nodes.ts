// Cluster nodes in child processes for the cluster tests: each runs
// `fixtures/cluster/node.mjs` (one registry with the `cluster` option) and is
// driven over IPC with a typed `call(command, ...args)`. Every node started
// is stopped by its process id (SIGKILL) in `stopAllNodes()`, which the tests
// call in `afterEach`; a process that exits kills the nodes it started.
//
// Also the polling helpers the tests wait with: `eventually` retries a check
// (an `expect`, usually) until it passes or a deadline, and fails with the
// check's last error.

import { type ChildProcess, fork } from 'node:child_process'
import path from 'node:path'
import { afterEach, beforeEach } from 'vitest'
import type {
  NityClusterDiagnostics,
  NityClusterNode,
  NityClusterOptions,
  NityClusterSessionInfo,
  NityClusterStats,
  NitySessionCloseReason,
  NitySessionRegistryStats,
} from 'nity-session-registry'
import { type RedisServer, startRedis, stopAllRedis } from './redis'

const packageRoot = path.resolve(__dirname, '..', '..')

/** The node process's script. */
export const NODE_FIXTURE = path.join(packageRoot, '__test__', 'fixtures', 'cluster', 'node.mjs')

/** The lease the tests use unless they need another: short, to keep them quick. */
export const LEASE_MS = 1_000
/**
 * The request timeout the tests use unless they test it: long, so that a
 * loaded machine does not turn an answer into ERR_CLUSTER_TIMEOUT.
 */
export const REQUEST_TIMEOUT_MS = 5_000
/**
 * What the tests allow for reaping a dead node, after its lease: the
 * contract is 500 ms, and the machine is a slow, loaded two-core one.
 */
export const REAP_SLACK_MS = 3_000

/** How a session made in a node process behaves. */
export interface SessionOptions {
  /** close() resolves after this many milliseconds (default: at once). */
  closeDelayMs?: number
}

/** What the node's close hook was told. */
export interface CloseRecord {
  sessionId: string
  clientId: string
  reason: NitySessionCloseReason
  error?: string
}

/** What the node's onNodeDown listener was told, and when (the node's Date.now()). */
export interface NodeDownRecord {
  nodeId: string
  sessions: number
  at: number
}

/** An error as a node process reported it. */
export interface RemoteError {
  name: string
  code: string | undefined
  message: string
}

/** The commands of node.mjs: their arguments and what they resolve with. */
export interface NodeCommands {
  ping: { args: []; result: 'pong' }
  nodeId: { args: []; result: string }
  hasCluster: { args: []; result: boolean }
  ready: { args: []; result: undefined }
  register: { args: [clientId: string, sessionId: string, options?: SessionOptions]; result: undefined }
  unregister: { args: [sessionId: string]; result: undefined }
  cleanupClient: { args: [clientId: string]; result: number }
  /** The id of the local handle, or undefined. */
  getSession: { args: [sessionId: string]; result: string | undefined }
  /** The ids of the client's local handles. */
  getClientSessions: { args: [clientId: string]; result: string[] }
  localStats: { args: []; result: NitySessionRegistryStats }
  clusterRegister: { args: [clientId: string, sessionId: string, options?: SessionOptions]; result: undefined }
  clusterUnregister: { args: [sessionId: string]; result: boolean }
  clusterCleanupClient: { args: [clientId: string]; result: number }
  clusterGetSession: { args: [sessionId: string]; result: NityClusterSessionInfo | undefined }
  clusterGetClientSessions: { args: [clientId: string]; result: NityClusterSessionInfo[] }
  clusterGetStats: { args: []; result: NityClusterStats }
  clusterNodes: { args: []; result: NityClusterNode[] }
  flush: { args: []; result: undefined }
  leave: { args: []; result: undefined }
  diagnostics: { args: []; result: NityClusterDiagnostics }
  closeCalls: { args: []; result: Record<string, number> }
  closeEvents: { args: []; result: CloseRecord[] }
  nodeDownEvents: { args: []; result: NodeDownRecord[] }
  dispose: { args: []; result: number }
  exit: { args: [code?: number]; result: undefined }
}

export type NodeCommand = keyof NodeCommands

/** A reply of a node: the value, or the error it reported. */
export type Reply<T> = { ok: true; value: T } | { ok: false; error: RemoteError }

/** The error `call` rejects with: the node's error, with its `name` and `code`. */
export class NodeCallError extends Error {
  readonly code: string | undefined
  readonly remoteName: string

  constructor(
    readonly node: string,
    readonly command: string,
    error: RemoteError,
  ) {
    super(
      `[node ${node}] ${command}: ${error.name}${error.code === undefined ? '' : ` ${error.code}`}: ${error.message}`,
    )
    this.name = error.name
    this.remoteName = error.name
    this.code = error.code
  }
}

export interface StartNodeOptions {
  cluster: NityClusterOptions
  /** Wait for `cluster.ready()` before the node counts as started (default true). */
  awaitReady?: boolean
  /** Exit when the parent disconnects (default true; false for the process-exit test). */
  exitOnDisconnect?: boolean
  /** How long starting may take (default 30 s). */
  startTimeoutMs?: number
}

interface Pending {
  command: string
  resolve: (reply: Reply<unknown>) => void
  reject: (error: Error) => void
  timer: NodeJS.Timeout
}

type StartedMessage =
  | { type: 'started'; ok: true; nodeId: string; pid: number }
  | { type: 'started'; ok: false; error: RemoteError; pid: number }

type ReplyMessage = { id: number } & Reply<unknown>

const running = new Set<ClusterNodeProcess>()

process.once('exit', () => {
  for (const node of running) node.killNow()
})

/** One node process. */
export class ClusterNodeProcess {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly pid: number
  /** The node id the registry reports (`cluster.nodeId`), once started. */
  nodeId = ''
  #nextId = 1
  #pending = new Map<number, Pending>()
  #output = ''
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined

  constructor(
    readonly child: ChildProcess,
    /** The name used in messages: the nodeId option, or the pid. */
    readonly name: string,
  ) {
    if (child.pid === undefined) throw new Error(`could not start node ${name}`)
    this.pid = child.pid
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-16_000)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal }
        running.delete(this)
        for (const [id, pending] of this.#pending) {
          clearTimeout(pending.timer)
          this.#pending.delete(id)
          pending.reject(
            new Error(`node ${this.name} exited (${this.describeExit()}) before answering ${pending.command}`),
          )
        }
        resolve({ code, signal })
      })
    })
    child.on('message', (message: ReplyMessage | StartedMessage) => {
      if (typeof message !== 'object' || message === null || !('id' in message)) return
      const pending = this.#pending.get(message.id)
      if (pending === undefined) return
      this.#pending.delete(message.id)
      clearTimeout(pending.timer)
      pending.resolve(message.ok ? { ok: true, value: message.value } : { ok: false, error: message.error })
    })
    running.add(this)
  }

  /** Whether the process is still running (possibly stopped by SIGSTOP). */
  get alive(): boolean {
    return this.#exit === undefined
  }

  /** What the process wrote on stdout and stderr (the last 16 kB). */
  output(): string {
    return this.#output
  }

  describeExit(): string {
    if (this.#exit === undefined) return 'running'
    return this.#exit.signal === null ? `code ${this.#exit.code}` : `signal ${this.#exit.signal}`
  }

  /** Sends a command and resolves with the node's reply, error or not; rejects only if the node is gone or silent. */
  attempt<C extends NodeCommand>(
    command: C,
    ...args: NodeCommands[C]['args']
  ): Promise<Reply<NodeCommands[C]['result']>> {
    return this.attemptWithin(30_000, command, ...args)
  }

  /** `attempt`, giving up after `timeoutMs` without an answer. */
  attemptWithin<C extends NodeCommand>(
    timeoutMs: number,
    command: C,
    ...args: NodeCommands[C]['args']
  ): Promise<Reply<NodeCommands[C]['result']>> {
    return new Promise((resolve, reject) => {
      if (!this.alive) {
        reject(
          new Error(`node ${this.name} has exited (${this.describeExit()}); cannot send ${command}\n${this.#output}`),
        )
        return
      }
      const id = this.#nextId++
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`node ${this.name} did not answer ${command} within ${timeoutMs} ms\n${this.#output}`))
      }, timeoutMs)
      this.#pending.set(id, {
        command,
        resolve: resolve as (reply: Reply<unknown>) => void,
        reject,
        timer,
      })
      this.child.send({ id, command, args }, (error) => {
        if (error === null || error === undefined) return
        const pending = this.#pending.get(id)
        if (pending === undefined) return
        this.#pending.delete(id)
        clearTimeout(timer)
        reject(new Error(`could not send ${command} to node ${this.name}: ${String(error)}`))
      })
    })
  }

  /** Sends a command; resolves with its value, rejects with a `NodeCallError` (with the node's `code`). */
  async call<C extends NodeCommand>(command: C, ...args: NodeCommands[C]['args']): Promise<NodeCommands[C]['result']> {
    const reply = await this.attempt(command, ...args)
    if (reply.ok) return reply.value
    throw new NodeCallError(this.name, command, reply.error)
  }

  /** Sends a signal to the process, by its pid. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.alive) return
    process.kill(this.pid, signal)
  }

  /** SIGKILL by pid, without waiting (for process exit). */
  killNow(): void {
    if (!this.alive) return
    try {
      process.kill(this.pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }

  /** SIGKILL (also ends a stopped process) and wait for the exit. */
  async stop(): Promise<void> {
    this.killNow()
    await this.exited
  }

  /** Closes the IPC channel from this side. */
  disconnect(): void {
    if (this.child.connected) this.child.disconnect()
  }
}

/**
 * Starts a node process and waits until its registry is made and (by
 * default) `cluster.ready()` resolved. Rejects with the node's own error when
 * that failed, e.g. while the `cluster` option is not accepted yet.
 */
export async function startNode(options: StartNodeOptions): Promise<ClusterNodeProcess> {
  const { cluster, awaitReady = true, exitOnDisconnect = true, startTimeoutMs = 30_000 } = options
  const child = fork(NODE_FIXTURE, [JSON.stringify({ cluster, awaitReady, exitOnDisconnect })], {
    cwd: packageRoot,
    execArgv: [],
    serialization: 'advanced',
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  const node = new ClusterNodeProcess(child, cluster.nodeId ?? `pid ${child.pid}`)
  const started = await new Promise<StartedMessage | Error>((resolve) => {
    const timer = setTimeout(() => resolve(new Error(`did not start within ${startTimeoutMs} ms`)), startTimeoutMs)
    const onMessage = (message: StartedMessage): void => {
      if (typeof message !== 'object' || message === null || message.type !== 'started') return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(message)
    }
    child.on('message', onMessage)
    void node.exited.then(() => {
      clearTimeout(timer)
      resolve(new Error(`exited (${node.describeExit()}) before starting`))
    })
  })
  if (started instanceof Error || !started.ok) {
    await node.stop()
    const why =
      started instanceof Error
        ? started.message
        : `${started.error.name}${started.error.code === undefined ? '' : ` ${started.error.code}`}: ${started.error.message}`
    throw new Error(`cluster node ${node.name} did not start: ${why}\n${node.output()}`)
  }
  node.nodeId = started.nodeId
  return node
}

/** The cluster options the tests use: a node id, a short lease, a long request timeout. */
export function nodeOptions(
  redisUrl: string,
  nodeId: string,
  overrides: Partial<NityClusterOptions> = {},
): NityClusterOptions {
  return { redis: redisUrl, nodeId, leaseMs: LEASE_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS, ...overrides }
}

/** Starts one node per id, all in the same namespace and with the same options. */
export function startFleet(
  redisUrl: string,
  nodeIds: readonly string[],
  overrides: Partial<NityClusterOptions> = {},
): Promise<ClusterNodeProcess[]> {
  return Promise.all(nodeIds.map((nodeId) => startNode({ cluster: nodeOptions(redisUrl, nodeId, overrides) })))
}

/** SIGKILLs every node process this process started and still runs, and waits for them. */
export async function stopAllNodes(): Promise<void> {
  await Promise.all([...running].map((node) => node.stop()))
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export interface PollOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number
  /** Wait this long between tries (default 50 ms). */
  intervalMs?: number
  /** Named in the failure message. */
  what?: string
}

/**
 * Runs `check` until it returns without throwing, and returns what it
 * returned; after `timeoutMs`, throws its last error (named with `what`).
 */
export async function eventually<T>(check: () => T | Promise<T>, options: PollOptions = {}): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 50, what = 'the condition' } = options
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      return await check()
    } catch (error) {
      lastError = error
    }
    if (Date.now() >= deadline) break
    await sleep(intervalMs)
  }
  const detail = lastError instanceof Error ? lastError.message : String(lastError)
  const error = new Error(`${what} did not hold within ${timeoutMs} ms; last failure:\n${detail}`)
  if (lastError instanceof Error) error.stack = `${error.message}\n${lastError.stack ?? ''}`
  throw error
}

/** Polls `predicate` until it is true; throws after `timeoutMs`. */
export async function waitUntil(predicate: () => boolean | Promise<boolean>, options: PollOptions = {}): Promise<void> {
  await eventually(async () => {
    if (!(await predicate())) throw new Error(`${options.what ?? 'the condition'} is still false`)
  }, options)
}

/** The counts of a `sessionsByNode`-like record without its zero entries. */
export function withoutZeros(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([, count]) => count !== 0))
}

/** Session ids of directory records, in the order given. */
export function ids(sessions: readonly NityClusterSessionInfo[]): string[] {
  return sessions.map((session) => session.sessionId)
}

/**
 * A redis-server of its own for every test of the file, handed to `use`
 * before each test; after each, every node and every server the test
 * started is stopped by its process id.
 */
export function redisPerTest(use: (server: RedisServer) => void): void {
  beforeEach(async () => {
    use(await startRedis())
  })
  afterEach(async () => {
    await stopAllNodes()
    await stopAllRedis()
  })
}
