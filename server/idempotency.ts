import type { Notification } from './notification.js'

export interface IdempotencyOptions {
  maxEntries: number
  ttlMs: number
}

interface Entry {
  fingerprint: string
  notification: Notification
  publishing: Promise<void>
  failed: boolean
  expiresAt: number
}

export type Replay =
  /** `new`: first request; `retry`: published again after a failure; `replay`: the first answer again. */
  | { kind: 'new' | 'retry' | 'replay', notification: Notification, publishing: Promise<void> }
  | { kind: 'conflict' }

/**
 * Remembers, per user and `Idempotency-Key`, the notification a POST created. A retry gets the
 * same notification back; if the first attempt failed (503), the retry publishes that same
 * notification again, with the same id, so the inbox stores it once even if the first attempt
 * did reach Kafka after all. Kept in memory: bounded in entries and time, one gateway's worth.
 */
export class IdempotencyCache {
  readonly #entries = new Map<string, Entry>()
  readonly #options: IdempotencyOptions

  constructor (options: IdempotencyOptions) {
    this.#options = options
  }

  /**
   * `create` makes the notification for a first request; `publish` sends one to Kafka. A key
   * reused with a different request (`fingerprint`) is a conflict.
   */
  run (userId: string, key: string, fingerprint: string, create: () => Notification, publish: (notification: Notification) => Promise<void>): Replay {
    const now = Date.now()
    this.#evict(now)
    const id = `${userId}\u0000${key}`
    const entry = this.#entries.get(id)
    if (entry === undefined) {
      const notification = create()
      const fresh: Entry = { fingerprint, notification, publishing: Promise.resolve(), failed: false, expiresAt: now + this.#options.ttlMs }
      this.#publish(fresh, publish)
      this.#entries.set(id, fresh)
      return { kind: 'new', notification, publishing: fresh.publishing }
    }
    if (entry.fingerprint !== fingerprint) return { kind: 'conflict' }
    if (!entry.failed) return { kind: 'replay', notification: entry.notification, publishing: entry.publishing }
    this.#publish(entry, publish)
    return { kind: 'retry', notification: entry.notification, publishing: entry.publishing }
  }

  get size (): number {
    return this.#entries.size
  }

  #publish (entry: Entry, publish: (notification: Notification) => Promise<void>): void {
    entry.failed = false
    entry.publishing = publish(entry.notification)
    entry.publishing.catch(() => { entry.failed = true })
  }

  /** Entries are in insertion order, so the oldest are first. */
  #evict (now: number): void {
    for (const [id, entry] of this.#entries) {
      if (this.#entries.size <= this.#options.maxEntries && entry.expiresAt > now) break
      this.#entries.delete(id)
    }
  }
}
