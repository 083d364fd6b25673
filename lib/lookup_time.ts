// The time a lookup (`getSession`, `getClientSessions`) records as a
// session's activity. A clock read costs more than the lookup itself, so
// the system clock is read once per synchronous run of lookups and the
// reading is forgotten once the promise jobs queued so far have run. An
// injected clock (the `clock` option) is read every time: a test that moves
// it between two lookups sees both times.

import { afterPromiseJobs, type Time } from './time'

export class LookupTime {
  private turnTime: number | undefined = undefined

  constructor(
    private readonly time: Time,
    private readonly injected: boolean,
  ) {}

  now(): number {
    if (this.injected) return this.time.now()
    let now = this.turnTime
    if (now === undefined) {
      now = this.time.now()
      this.turnTime = now
      afterPromiseJobs(this.forget)
    }
    return now
  }

  private readonly forget = (): void => {
    this.turnTime = undefined
  }
}
