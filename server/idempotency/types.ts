import { NotifyError } from '../errors.js'

/**
 * What a request with an `Idempotency-Key` turns out to be. `value` is what the first request made
 * and every retry publishes again: a follow's notification, or what a publish's notifications are
 * rebuilt from (server/publication.ts).
 */
export type KeyedAttempt<T> =
  /** `new`: first request; `retry`: published again after a failure; `duplicate`: the same request again, given the first one's answer. */
  | { kind: 'new' | 'retry' | 'duplicate', value: T, publishing: Promise<void> }
  | { kind: 'conflict' }
  /** The owner's share is full of keys still publishing: nothing was published; retry shortly. */
  | { kind: 'full' }

/**
 * Remembers, per user and `Idempotency-Key`, what a POST created (a JSON value). A retry gets the
 * same value back; if the first attempt failed (503), or its outcome is unknown, the retry
 * publishes that same value again (the same notification ids), so the inbox stores each
 * notification once even if the first attempt did reach Kafka after all.
 */
export interface Idempotency {
  /**
   * `create` makes the value for a first request; `publish` sends it to Kafka. A key reused with a
   * different request (`fingerprint`; the routes' fingerprints never collide with each other's) is
   * a conflict. Rejects with `IdempotencyUnavailableError` when the keys cannot be read, or not by
   * `options.deadline`: nothing was published then.
   */
  run<T> (userId: string, key: string, fingerprint: string, create: () => T, publish: (value: T) => Promise<void>, options?: RunOptions): KeyedAttempt<T> | Promise<KeyedAttempt<T>>
}

export interface RunOptions {
  /** Whose share a new key counts against: the caller (`userId`), unless a service token acts for them. */
  owner?: string
  /** When the request must be answered (`performance.now()` milliseconds): a key claim counts inside it. */
  deadline?: number
}

/** The shared key store (Redis) did not answer: whether the key was used before is unknown. */
export class IdempotencyUnavailableError extends NotifyError<'IDEMPOTENCY_UNAVAILABLE'> {
  constructor (message: string, options: { cause?: unknown } = {}) {
    super('IDEMPOTENCY_UNAVAILABLE', message, { canRetry: true, cause: options.cause })
  }
}
