// The automatic stale cleanup: a run, then the next one `interval` ms after
// it finished, so runs never overlap. Its timer and the end of each run
// hold it weakly: a registry dropped without dispose() is collected, and
// its timer then does nothing. Nobody awaits a run, so it never keeps the
// process alive.

import type { Time } from './time'

export class AutoCleanup {
  /** The interval while running; `undefined` when stopped. */
  private current: number | undefined = undefined
  /** Bumped by every start and stop: a run or timer of an older generation does nothing. */
  private generation = 0
  private timer: unknown = undefined

  /** `run(done)` starts one cleanup run and calls `done` once it finished. */
  constructor(
    private readonly time: Time,
    private readonly run: (done: () => void) => void,
  ) {}

  /** The interval while running. */
  get interval(): number | undefined {
    return this.current
  }

  /** (Re)starts with `interval`: the first run comes `interval` ms from now. */
  start(interval: number): void {
    this.stop()
    this.current = interval
    this.arm(this.generation)
  }

  /** Stops; a run in progress finishes but arms nothing. Idempotent. */
  stop(): void {
    this.current = undefined
    this.generation += 1
    if (this.timer !== undefined) this.time.clearTimer(this.timer)
    this.timer = undefined
  }

  private arm(generation: number): void {
    const interval = this.current
    if (interval === undefined || generation !== this.generation) return
    const self = new WeakRef(this)
    this.timer = this.time.setTimer(() => self.deref()?.tick(generation), interval)
  }

  private tick(generation: number): void {
    this.timer = undefined
    if (generation !== this.generation) return
    const self = new WeakRef(this)
    this.run(() => self.deref()?.arm(generation))
  }
}
