import type { Test } from 'tap'
import type { Dial, OpenTransport, TransportEnd, TransportHandlers, TransportKind } from '../../client/transport.js'
import type { ServerFrame } from '../../client/types.js'

/** One connection attempt a client made through FakeNetwork: what it dialled, and its handlers to drive. */
export interface FakeAttempt {
  kind: TransportKind
  dial: Dial
  closed: boolean
  frame: (frame: ServerFrame) => void
  end: (end: TransportEnd) => void
}

/**
 * Transports for unit tests of client/ without a gateway: every attempt is recorded, and the test
 * plays the gateway's side (frames, ends) on it.
 */
export class FakeNetwork {
  readonly attempts: FakeAttempt[] = []
  readonly #waiters: Array<() => void> = []

  transport (kind: TransportKind): OpenTransport {
    return (dial: Dial, handlers: TransportHandlers) => {
      const attempt: FakeAttempt = {
        kind,
        dial,
        closed: false,
        frame: (frame) => handlers.onFrame(frame),
        end: (end) => handlers.onEnd(end)
      }
      this.attempts.push(attempt)
      for (const wake of this.#waiters.splice(0)) wake()
      return { close: () => { attempt.closed = true } }
    }
  }

  /** Resolves with the `index`-th attempt (0 first), once it is made. */
  async attempt (index: number): Promise<FakeAttempt> {
    while (this.attempts.length <= index) await new Promise<void>((resolve) => this.#waiters.push(resolve))
    return this.attempts[index]!
  }
}

/** Backoff waits of 0 ms for this test: `Math.random` gives 0 until its teardown. */
export function noJitter (t: Test): void {
  const random = Math.random
  Math.random = () => 0
  t.teardown(() => { Math.random = random })
}
