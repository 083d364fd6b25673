// A real `redis-server` for the cluster tests: started on a free loopback
// port without persistence, stopped by the process id it was started with
// (never by name), whatever the test did. Call `stopAllRedis()` in an
// `afterEach`/`afterAll`; a process that exits stops the servers it started.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

export const REDIS_SERVER = '/usr/bin/redis-server'
export const REDIS_CLI = fs.existsSync('/usr/bin/redis-cli') ? '/usr/bin/redis-cli' : 'redis-cli'

/** A running (or killed, for a while) redis-server of the test's own. */
export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:<port>/0`. */
  readonly url: string
  /** The process id of the server now running (it changes on `restartEmpty()`). */
  readonly pid: number | undefined
  /** `redis://user:password@127.0.0.1:<port>/<db>`, the parts URL-encoded. */
  urlWith(auth: { user?: string; password: string }, db?: number): string
  /** Runs `redis-cli -h 127.0.0.1 -p <port> ...args` synchronously and returns its output, trimmed. */
  cli(...args: string[]): string
  /** SIGKILL, by pid; resolves once the server has exited. Nothing listens on the port afterwards. */
  kill(): Promise<void>
  /** Kills the server (if running) and starts an empty one on the same port. */
  restartEmpty(): Promise<void>
  /** Kills the server (if running) and forgets it; safe to call twice. */
  stop(): Promise<void>
  /** The last lines redis-server wrote, for failure messages. */
  log(): string
}

const running = new Set<RedisHandle>()

process.once('exit', () => {
  for (const server of running) server.abandon()
})

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port'))
      })
    })
  })
}

/** Whether a server answers PING on the port (a raw RESP exchange over TCP). */
export function answersPing(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    let reply = ''
    let done = false
    const socket = net.connect({ host: '127.0.0.1', port })
    const finish = (ok: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.setEncoding('utf8')
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk: string) => {
      reply += chunk
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'))
    })
    socket.once('error', () => finish(false))
    socket.once('close', () => finish(false))
  })
}

class RedisHandle implements RedisServer {
  #child: ChildProcess | undefined
  #exited: Promise<void> = Promise.resolve()
  #log = ''
  readonly #dir: string

  constructor(
    readonly port: number,
    readonly extraArgs: readonly string[],
  ) {
    this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nity-redis-'))
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  urlWith(auth: { user?: string; password: string }, db = 0): string {
    const user = auth.user === undefined ? '' : encodeURIComponent(auth.user)
    return `redis://${user}:${encodeURIComponent(auth.password)}@127.0.0.1:${this.port}/${db}`
  }

  cli(...args: string[]): string {
    return execFileSync(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(this.port), ...args], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim()
  }

  log(): string {
    return this.#log
  }

  /** Spawns redis-server on the port and waits until it answers PING; false when it exited first. */
  async start(deadlineMs = 15_000): Promise<boolean> {
    const child = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.#dir,
        ...this.extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    this.#child = child
    let exited = false
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        exited = true
        resolve()
      })
      child.once('error', (error) => {
        this.#log += `\nspawn error: ${String(error)}`
        exited = true
        resolve()
      })
    })
    const keep = (chunk: Buffer): void => {
      this.#log = (this.#log + chunk.toString('utf8')).slice(-8_000)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    running.add(this)
    const deadline = Date.now() + deadlineMs
    while (Date.now() < deadline) {
      if (exited) return false
      if (await answersPing(this.port)) return true
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    throw new Error(`redis-server did not answer PING on port ${this.port} within ${deadlineMs} ms:\n${this.#log}`)
  }

  /** SIGKILL by pid, without waiting (for process exit). */
  killNow(): void {
    const child = this.#child
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
  }

  /** At process exit: SIGKILL by pid and remove the directory, synchronously. */
  abandon(): void {
    this.killNow()
    fs.rmSync(this.#dir, { recursive: true, force: true })
  }

  async kill(): Promise<void> {
    this.killNow()
    await this.#exited
  }

  async restartEmpty(): Promise<void> {
    await this.kill()
    // The port was just released; SO_REUSEADDR lets redis bind it again, but
    // give it a few tries on a slow machine.
    for (let attempt = 0; attempt < 20; attempt++) {
      if (await this.start()) return
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`redis-server could not start again on port ${this.port}:\n${this.#log}`)
  }

  async stop(): Promise<void> {
    await this.kill()
    running.delete(this)
    fs.rmSync(this.#dir, { recursive: true, force: true })
  }
}

/** Starts a redis-server on a free loopback port; `extraArgs` are more `--name value` config arguments. */
export async function startRedis(extraArgs: readonly string[] = []): Promise<RedisServer> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const server = new RedisHandle(await freePort(), extraArgs)
    if (await server.start()) return server
    // The port was taken in between: try another one.
    const log = server.log()
    await server.stop()
    if (attempt === 4) throw new Error(`redis-server did not start:\n${log}`)
  }
  throw new Error('unreachable')
}

/** Stops every server this process started and has not stopped yet. */
export async function stopAllRedis(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop()))
}
