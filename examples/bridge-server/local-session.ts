/**
 * A Nity session that does real, deterministic local work instead of calling
 * a model, so the bridge server can be run anywhere: tasks summarise a text,
 * find TODOs in a snippet, or (for demonstrations) take a given time. It has
 * a real health: tasks time out, errors are counted, and too many errors put
 * the session in the error state.
 */
import type { NitySessionHandle, NitySessionHealth, NitySessionState, NityTaskResult } from 'nity-session-registry'

export type LocalTaskType = 'summarize' | 'find-todos' | 'wait'

export const TASK_TYPES: readonly LocalTaskType[] = ['summarize', 'find-todos', 'wait']

export interface LocalSessionOptions {
  /** A task running longer than this times out (default 5 s). */
  taskTimeoutMs?: number
  /** Errors after which the session reports the error state (default 3). */
  maxErrors?: number
}

let created = 0

export class LocalSession implements NitySessionHandle {
  readonly id: string
  private state: NitySessionState = 'idle'
  private errorCount = 0
  private timedOut = false
  private taskStartedAt = 0
  private lastActivity = Date.now()
  private running: { timer: NodeJS.Timeout; cancel: (error: Error) => void } | undefined
  private closed = false
  private readonly taskTimeoutMs: number
  private readonly maxErrors: number

  constructor(
    readonly clientId: string,
    options: LocalSessionOptions = {},
  ) {
    created += 1
    this.id = `${clientId}#${created}`
    this.taskTimeoutMs = options.taskTimeoutMs ?? 5_000
    this.maxErrors = options.maxErrors ?? 3
  }

  getHealth(): NitySessionHealth {
    return {
      state: this.state,
      errorCount: this.errorCount,
      isTimedOut: this.timedOut,
      uptime: this.running ? Date.now() - this.taskStartedAt : 0,
      lastActivity: this.lastActivity,
    }
  }

  isRunning(): boolean {
    return this.running !== undefined
  }

  /** Runs one task; a session runs one task at a time. */
  async sendTask(taskType: string, prompt: string): Promise<NityTaskResult> {
    if (this.closed) throw new Error(`session ${this.id} is closed`)
    if (this.running) throw new Error(`session ${this.id} is busy`)
    this.state = 'active'
    this.timedOut = false
    this.taskStartedAt = Date.now()
    this.lastActivity = this.taskStartedAt
    try {
      const output = await this.run(taskType, prompt)
      this.state = 'completed'
      return { output, taskType }
    } catch (error) {
      this.errorCount += 1
      this.state = this.errorCount >= this.maxErrors || this.timedOut ? 'error' : 'completed'
      throw error
    } finally {
      this.lastActivity = Date.now()
    }
  }

  /** Cancels a running task; idempotent. */
  async close(): Promise<void> {
    this.closed = true
    this.running?.cancel(new Error(`session ${this.id} was closed`))
  }

  private run(taskType: string, prompt: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const work = () => {
        try {
          resolve(perform(taskType, prompt))
        } catch (error) {
          reject(error)
        }
      }
      const duration = taskType === 'wait' ? Math.max(0, Number.parseInt(prompt, 10) || 0) : 0
      const finish = (settle: () => void) => {
        if (this.running === undefined) return
        clearTimeout(this.running.timer)
        clearTimeout(deadline)
        this.running = undefined
        settle()
      }
      const deadline = setTimeout(() => {
        this.timedOut = true
        finish(() => reject(new Error(`task ${taskType} timed out after ${this.taskTimeoutMs} ms`)))
      }, this.taskTimeoutMs)
      this.running = {
        timer: setTimeout(() => finish(work), duration),
        cancel: (error) => finish(() => reject(error)),
      }
    })
  }
}

/** The work itself: plain functions of the prompt. */
export function perform(taskType: string, prompt: string): string {
  switch (taskType) {
    case 'summarize': {
      const lines = prompt.split('\n').filter((line) => line.trim() !== '')
      const words = prompt.split(/\s+/).filter((word) => word !== '')
      return `${words.length} words in ${lines.length} lines`
    }
    case 'find-todos': {
      const todos = prompt
        .split('\n')
        .map((line, i) => ({ line: i + 1, text: line.trim() }))
        .filter(({ text }) => /\b(TODO|FIXME)\b/.test(text))
      return todos.length === 0 ? 'no TODOs' : todos.map(({ line, text }) => `${line}: ${text}`).join('\n')
    }
    case 'wait':
      return `waited ${Number.parseInt(prompt, 10) || 0} ms`
    default:
      throw new Error(`unknown task type '${taskType}' (known: ${TASK_TYPES.join(', ')})`)
  }
}
