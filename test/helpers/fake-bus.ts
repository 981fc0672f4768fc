import type { Notification } from '../../server/notification.js'
import type { BatchHandler, Health, NotificationBus } from '../../server/kafka/types.js'

/**
 * An in-memory stand-in for Kafka, for unit tests of the routes above the bus only: a publish
 * is handed straight to the consumer's handler. Tests of Kafka behaviour use the real broker.
 */
export class FakeBus implements NotificationBus {
  readonly published: Notification[] = []
  /** Set to make `publish` fail like an unreachable broker. */
  failWith: Error | undefined
  #handler: BatchHandler | undefined
  #offset = 0

  async publish (notification: Notification): Promise<void> {
    if (this.failWith !== undefined) throw this.failWith
    this.published.push(notification)
    await this.#handler?.([{ notification, timestamp: Date.now(), topic: 'fake', partition: 0, offset: String(this.#offset++) }])
  }

  async startConsuming (handler: BatchHandler): Promise<void> {
    this.#handler = handler
  }

  async health (): Promise<Health> {
    return this.failWith === undefined ? { ok: true, reasons: [] } : { ok: false, reasons: [this.failWith.message] }
  }

  async close (): Promise<void> {
    this.#handler = undefined
  }
}
