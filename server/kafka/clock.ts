/** Time as the Kafka adapter's timers see it; tests pass a fake one to control it. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now (): number
  /** Calls `fn` once after `ms`; returns a function that cancels it. Never keeps the process alive. */
  schedule (fn: () => void, ms: number): () => void
}

export const systemClock: Clock = {
  now: () => performance.now(),
  schedule (fn, ms) {
    const timer = setTimeout(fn, ms)
    timer.unref()
    return () => clearTimeout(timer)
  }
}
