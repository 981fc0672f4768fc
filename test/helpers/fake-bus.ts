import type { Notification } from '../../server/notification.js'
import type { BatchHandler, Health, NotificationBus } from '../../server/kafka/types.js'

/**
 * An in-memory stand-in for Kafka, for unit tests of the routes above the bus only: a publish
 * is handed straight to the consumer's handler. Tests of Kafka behaviour use the real broker.
 */
export class FakeBus implements NotificationBus {
  readonly published: Notification[] = []
  /** How many `publish` calls brought them: one per request, however many recipients. */
  publishCalls = 0
  /** Set to make `publish` fail like an unreachable broker. */
  failWith: Error | undefined
  /**
   * Set before the app starts to make the group join slow: the consumer is not in the group until
   * the test calls `join()`, and `startConsuming` resolves only then (as a bus that waited for the
   * join would).
   */
  manualJoin = false
  #joined = true
  #join: (() => void) | undefined
  #handler: BatchHandler | undefined
  #offset = 0

  async publish (notifications: readonly Notification[]): Promise<void> {
    this.publishCalls++
    if (this.failWith !== undefined) throw this.failWith
    this.published.push(...notifications)
    const first = this.#offset
    this.#offset += notifications.length
    await this.#handler?.(notifications.map((notification, i) => ({
      notification, json: JSON.stringify(notification), timestamp: Date.now(), topic: 'fake', partition: 0, offset: String(first + i)
    })), [{ topic: 'fake', partition: 0, nextOffset: String(this.#offset) }])
  }

  async startConsuming (handler: BatchHandler): Promise<void> {
    this.#handler = handler
    if (!this.manualJoin) return
    this.#joined = false
    await new Promise<void>((resolve) => {
      this.#join = () => {
        this.#joined = true
        resolve()
      }
    })
  }

  /** Completes the group join of a `manualJoin` bus. */
  join (): void {
    this.#join?.()
  }

  async health (): Promise<Health> {
    const reasons = [
      ...(this.#joined ? [] : [{ reason: 'consumer group not joined yet' }]),
      ...(this.failWith === undefined ? [] : [{ reason: 'Kafka unreachable', detail: this.failWith.message }])
    ]
    return { ok: reasons.length === 0, reasons }
  }

  async close (): Promise<void> {
    this.#handler = undefined
  }
}
