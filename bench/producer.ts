import { randomBytes } from 'node:crypto'
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs'

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
 * what limits the delivery and catch-up measurements.
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

  /**
   * Sends in batches of `batchSize`, `inFlight` batches at a time (one kafkajs `send` is one
   * produce request). Stops early, returning how many went out, once `until()` is false.
   */
  async produce (notifications: readonly BenchNotification[], batchSize: number, inFlight: number, until: () => boolean = () => true): Promise<number> {
    let next = 0
    let produced = 0
    const worker = async (): Promise<void> => {
      while (next < notifications.length && until()) {
        const batch = notifications.slice(next, next + batchSize)
        next += batch.length
        await this.#producer.send({
          topic: this.#topic,
          acks: -1,
          messages: batch.map((notification) => ({
            key: notification.userId,
            value: JSON.stringify(notification),
            headers: { 'content-type': 'application/json', 'notification-version': '1' }
          }))
        })
        produced += batch.length
      }
    }
    await Promise.all(Array.from({ length: inFlight }, worker))
    return produced
  }

  async disconnect (): Promise<void> {
    await this.#producer.disconnect()
  }
}
