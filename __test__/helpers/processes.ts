import { spawn } from 'node:child_process'
import path from 'node:path'
import { Worker } from 'node:worker_threads'

const packageRoot = path.resolve(__dirname, '..', '..')

/** What a worker posted, and how it ended. */
export interface WorkerRun<M> {
  messages: M[]
  exitCode: number
  error: unknown
}

/** Runs a worker to its end (by itself), collecting its messages. */
export function runWorker<M>(file: string, workerData?: unknown): Promise<WorkerRun<M>> {
  return new Promise((resolve) => {
    const worker = new Worker(file, { workerData })
    const messages: M[] = []
    let error: unknown
    worker.on('message', (message: M) => messages.push(message))
    worker.on('error', (e) => {
      error = e
    })
    worker.on('exit', (exitCode) => resolve({ messages, exitCode, error }))
  })
}

/** The first message a worker posts (or its error / early exit). */
export function firstMessage<M>(worker: Worker): Promise<M> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number): void => reject(new Error(`worker exited with ${code} before posting`))
    worker.once('message', (message: M) => {
      worker.off('exit', onExit)
      resolve(message)
    })
    worker.once('error', reject)
    worker.once('exit', onExit)
  })
}

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  timedOut: boolean
  stdout: string
  stderr: string
}

/**
 * Runs `node ...nodeArgs <file> ...args` from the package root and waits for
 * it to exit by itself, or kills it at the timeout.
 */
export function runNode(
  file: string,
  args: string[],
  { nodeArgs = [], timeoutMs = 20_000 }: { nodeArgs?: string[]; timeoutMs?: number } = {},
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, file, ...args], {
      cwd: packageRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, timedOut, stdout, stderr })
    })
  })
}
