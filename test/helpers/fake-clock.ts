import type { Clock } from '../../server/clock.js'

interface Timer { at: number, seq: number, fn: () => void }

/**
 * The tests' one clock: it moves only when the test says so (`advance`), and timers run in order
 * of their due time. `start` is where it starts: 0 for durations, or a date (`Date.now()`) for
 * code that reads the wall clock (token expiry).
 */
export class FakeClock implements Clock {
  #now: number
  #seq = 0
  readonly #timers: Timer[] = []

  constructor (start = 0) {
    this.#now = start
  }

  now (): number {
    return this.#now
  }

  schedule (fn: () => void, ms: number): () => void {
    const timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn }
    this.#timers.push(timer)
    return () => {
      const index = this.#timers.indexOf(timer)
      if (index >= 0) this.#timers.splice(index, 1)
    }
  }

  /** Timers scheduled and not yet run or cancelled. */
  get timers (): number {
    return this.#timers.length
  }

  /** Moves time forward by `ms`, running every timer that comes due on the way, at its due time. */
  advance (ms: number): void {
    const until = this.#now + ms
    for (;;) {
      let next: Timer | undefined
      for (const timer of this.#timers) {
        if (timer.at <= until && (next === undefined || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq))) next = timer
      }
      if (next === undefined) break
      this.#timers.splice(this.#timers.indexOf(next), 1)
      this.#now = next.at
      next.fn()
    }
    this.#now = until
  }
}
