import { NotifyError } from '../errors.js'
import type { Notification } from '../notification.js'

/** What a request with an `Idempotency-Key` turns out to be. */
export type KeyedAttempt =
  /** `new`: first request; `retry`: published again after a failure; `duplicate`: the same request again, given the first one's answer. */
  | { kind: 'new' | 'retry' | 'duplicate', notification: Notification, publishing: Promise<void> }
  | { kind: 'conflict' }
  /** The owner's share is full of keys still publishing: nothing was published; retry shortly. */
  | { kind: 'full' }

/**
 * Remembers, per user and `Idempotency-Key`, the notification a POST created. A retry gets the
 * same notification back; if the first attempt failed (503), or its outcome is unknown, the retry
 * publishes that same notification again, with the same id, so the inbox stores it once even if
 * the first attempt did reach Kafka after all.
 */
export interface Idempotency {
  /**
   * `create` makes the notification for a first request; `publish` sends one to Kafka. A key
   * reused with a different request (`fingerprint`) is a conflict. Rejects with
   * `IdempotencyUnavailableError` when the keys cannot be read, or not by `options.deadline`:
   * nothing was published then.
   */
  run (userId: string, key: string, fingerprint: string, create: () => Notification, publish: (notification: Notification) => Promise<void>, options?: RunOptions): KeyedAttempt | Promise<KeyedAttempt>
}

export interface RunOptions {
  /** Whose share a new key counts against: the follower (`userId`), unless a service token acts for them. */
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
