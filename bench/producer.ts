import { Kafka, logLevel, Partitioners, type Message, type Producer } from 'kafkajs'
import { encodeNotification } from '../server/kafka/record.js'
import type { Notification } from '../server/notification.js'

/** Whom record `index` of a fixed-rate run goes to: the recipients in turn. */
export function recipientAt<T> (recipients: readonly T[], index: number): T {
  return recipients[index % recipients.length]!
}

/**
 * Writes notifications straight to the topic, as another service would, so that HTTP is not
 * what limits the produce and catch-up measurements.
 */
export class RecordProducer {
  readonly #producer: Producer
  readonly #topic: string

  private constructor (producer: Producer, topic: string) {
    this.#producer = producer
    this.#topic = topic
  }

  static async connect (brokers: string[], topic: string): Promise<RecordProducer> {
    const kafka = new Kafka({ clientId: 'kafka-notify-bench', brokers, logLevel: logLevel.NOTHING })
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
    await producer.connect()
    return new RecordProducer(producer, topic)
  }

  /** One produce request (acks=-1) carrying `records`. */
  async send (records: Message[]): Promise<void> {
    await this.#producer.send({ topic: this.#topic, acks: -1, messages: records })
  }

  /**
   * Sends in batches of `batchSize`, one batch at a time: batches in flight together may land in
   * a partition out of order.
   */
  async produce (notifications: readonly Notification[], batchSize: number): Promise<void> {
    for (let next = 0; next < notifications.length; next += batchSize) {
      await this.send(notifications.slice(next, next + batchSize).map(encodeNotification))
    }
  }

  async disconnect (): Promise<void> {
    await this.#producer.disconnect()
  }
}
