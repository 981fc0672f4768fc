import { randomBytes } from 'node:crypto'
import { Kafka, logLevel, Partitioners, type Message, type Producer } from 'kafkajs'

export interface UserRef { id: string, name: string }

/** A notification as DESIGN.md defines it: the record value the gateway consumes. */
export interface BenchNotification {
  id: string
  type: 'follow'
  userId: string
  actor: UserRef
  message: string
  createdAt: string
}

export function followNotification (actor: UserRef, recipient: UserRef): BenchNotification {
  return {
    id: uuidv7(),
    type: 'follow',
    userId: recipient.id,
    actor,
    message: `${actor.name} started following you.`,
    createdAt: new Date().toISOString()
  }
}

/** Whom record `index` of a fixed-rate run goes to: the recipients in turn. */
export function recipientAt<T> (recipients: readonly T[], index: number): T {
  return recipients[index % recipients.length]!
}

/** The record a notification travels in: keyed by recipient, so a user's records share a partition. */
export function toRecord (notification: BenchNotification): Message {
  return {
    key: notification.userId,
    value: JSON.stringify(notification),
    headers: { 'content-type': 'application/json', 'notification-version': '1' }
  }
}

/** RFC 9562 UUIDv7, the id format the gateway's schema accepts. */
export function uuidv7 (): string {
  const bytes = randomBytes(16)
  bytes.writeUIntBE(Date.now(), 0, 6)
  bytes[6] = 0x70 | (bytes[6]! & 0x0f)
  bytes[8] = 0x80 | (bytes[8]! & 0x3f)
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
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
  async produce (notifications: readonly BenchNotification[], batchSize: number): Promise<void> {
    for (let next = 0; next < notifications.length; next += batchSize) {
      await this.send(notifications.slice(next, next + batchSize).map(toRecord))
    }
  }

  async disconnect (): Promise<void> {
    await this.#producer.disconnect()
  }
}
