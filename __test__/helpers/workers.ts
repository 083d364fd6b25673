import { Worker } from 'node:worker_threads'

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
    let error: unknown = undefined
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
