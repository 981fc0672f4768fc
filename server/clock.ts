/**
 * Time as the gateway's timers see it. Code whose timing a test controls takes a Clock, and the
 * test passes its fake one (test/helpers/fake-clock.ts) to move time by hand.
 */
export interface Clock {
  /** Milliseconds: monotonic for systemClock, since the epoch for wallClock. */
  now (): number
  /**
   * Calls `fn` once after `ms`; returns a function that cancels it. The timers of systemClock and
   * wallClock never keep the process alive.
   */
  schedule (fn: () => void, ms: number): () => void
}

function unrefTimer (fn: () => void, ms: number): () => void {
  const timer = setTimeout(fn, ms)
  timer.unref()
  return () => clearTimeout(timer)
}

/** For durations and deadlines: monotonic, so a step of the wall clock moves none of them. */
export const systemClock: Clock = {
  now: () => performance.now(),
  schedule: unrefTimer
}

/** For times that come from outside as dates: a token's `exp`, a notification's `createdAt`. */
export const wallClock: Clock = {
  now: () => Date.now(),
  schedule: unrefTimer
}
