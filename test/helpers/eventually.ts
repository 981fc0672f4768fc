import { setTimeout as delay } from 'node:timers/promises'

export interface EventuallyOptions {
  /** How long `done` may take to hold; past it, `eventually` rejects (default 10 s). */
  timeoutMs?: number
  /** The pause between two probes (default 20 ms). */
  everyMs?: number
}

/**
 * Probes, again and again, a state that no event of the test's own announces (the hub letting go
 * of a closed socket, ioredis reconnecting, a gateway's /readyz, a process exiting) until
 * `done(value)` holds, and returns that value; rejects after `timeoutMs`, naming `what` and the
 * last value probed. State that changes by events the test can see is waited for on those events
 * instead (`Waiters`, `FeedClient.until`, `FakeSocket.until`).
 */
export async function eventually<T> (what: string, probe: () => T | Promise<T>, done: (value: T) => boolean = Boolean, options: EventuallyOptions = {}): Promise<T> {
  const { timeoutMs = 10_000, everyMs = 20 } = options
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (done(value)) return value
    if (performance.now() > deadline) {
      throw new Error(`not within ${timeoutMs} ms: ${what}${typeof value === 'boolean' ? '' : ` (last: ${JSON.stringify(value)})`}`)
    }
    await delay(everyMs)
  }
}
