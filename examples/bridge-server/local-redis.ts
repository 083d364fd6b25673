/**
 * A throwaway `redis-server` on a free loopback port, without persistence,
 * for the cluster demo and `npm run bench:cluster`. Stopped by its process
 * id; never touches a Redis it did not start.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { createServer } from 'node:net'

/** A loopback port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

/** Whether `redis-server` can be started here. */
export function redisServerInstalled(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export class LocalRedis {
  private process: ChildProcess | undefined

  private constructor(readonly port: number) {}

  /** Starts a server on a free port and waits until it answers. */
  static async start(): Promise<LocalRedis> {
    const redis = new LocalRedis(await freePort())
    await redis.restart()
    return redis
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`
  }

  /** Starts the server (again, empty) on its port and waits until it answers. */
  async restart(): Promise<void> {
    await this.kill()
    this.process = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    )
    for (let i = 0; i < 200; i++) {
      try {
        if (this.cli('PING').trim() === 'PONG') return
      } catch {
        // not up yet
      }
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    await this.kill()
    throw new Error('redis-server did not start')
  }

  /** Runs one redis-cli command against the server; its reply as text. */
  cli(...args: string[]): string {
    return execFileSync('redis-cli', ['-p', String(this.port), ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
  }

  /** Kills the server by its process id (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    const server = this.process
    if (server === undefined || server.exitCode !== null || server.signalCode !== null) return
    const gone = new Promise((resolve) => server.once('exit', resolve))
    server.kill('SIGKILL')
    await gone
  }
}
