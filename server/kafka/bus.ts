import { Partitioners, type Consumer, type Kafka, type KafkaMessage, type Producer } from 'kafkajs'
import { KafkaUnavailableError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { Notification } from '../notification.js'
import { createKafkaClient } from './client.js'
import { decodeRecord, encodeNotification, RECORD_HEADERS } from './record.js'
import { OffsetCommitter } from './offset-committer.js'
import { SendBatcher } from './send-batcher.js'
import { ensureTopics } from './topics.js'
import type { BatchHandler, ConsumedNotification, DeadLetterKind, Health, NotificationBus } from './types.js'

export interface KafkaBusOptions {
  brokers: string[]
  clientId: string
  topic: string
  dlqTopic: string
  partitions: number
  replicationFactor: number
  groupId: string
  /** How long a publish may take before the POST answers 503. */
  sendTimeoutMs: number
  isKnownUser: (id: string) => boolean
  /** Told about every dead-lettered record (for metrics). */
  onDeadLetter?: (kind: DeadLetterKind) => void
  /** Makes the handled notifications durable; runs before each offset commit. */
  beforeCommit: () => Promise<void>
  /** Told after each batch how far the partition's consumer is behind. */
  onLag?: (partition: number, lag: number) => void
}

const MAX_IN_FLIGHT_SENDS = 4
const MAX_BATCH_SIZE = 1000
const HEALTH_PROBE_TIMEOUT_MS = 1500
/** How often handled offsets are committed; a crash consumes at most this much again. */
const COMMIT_INTERVAL_MS = 1000

/** Connects to Kafka, creates the topics if needed and returns the gateway's bus. */
export async function createKafkaBus (options: KafkaBusOptions, log: Logger): Promise<NotificationBus> {
  const kafka = createKafkaClient({
    brokers: options.brokers,
    clientId: options.clientId,
    requestTimeoutMs: options.sendTimeoutMs
  }, log)
  const admin = kafka.admin()
  await admin.connect()
  try {
    await ensureTopics(admin, [
      { topic: options.topic, partitions: options.partitions, replicationFactor: options.replicationFactor },
      { topic: options.dlqTopic, partitions: 1, replicationFactor: options.replicationFactor }
    ])
  } catch (error) {
    await admin.disconnect()
    throw error
  }
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 100, maxRetryTime: 500, retries: 2 }
  })
  await producer.connect()
  return new KafkaBus(kafka, admin, producer, options, log)
}

class KafkaBus implements NotificationBus {
  readonly #kafka: Kafka
  readonly #admin: ReturnType<Kafka['admin']>
  readonly #producer: Producer
  readonly #options: KafkaBusOptions
  readonly #log: Logger
  readonly #batcher: SendBatcher<Notification>
  #consumer: Consumer | undefined
  #committer: OffsetCommitter | undefined
  #batchInFlight: Promise<void> | undefined
  #groupJoined = false
  #consumerProblem = 'consumer not started'
  #probe: Promise<string | undefined> | undefined

  constructor (kafka: Kafka, admin: ReturnType<Kafka['admin']>, producer: Producer, options: KafkaBusOptions, log: Logger) {
    this.#kafka = kafka
    this.#admin = admin
    this.#producer = producer
    this.#options = options
    this.#log = log
    this.#batcher = new SendBatcher({
      maxInFlight: MAX_IN_FLIGHT_SENDS,
      maxBatchSize: MAX_BATCH_SIZE,
      send: (notifications) => this.#send(notifications)
    })
  }

  publish (notification: Notification): Promise<void> {
    return this.#batcher.add(notification)
  }

  async #send (notifications: Notification[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new KafkaUnavailableError(`Kafka did not acknowledge within ${this.#options.sendTimeoutMs} ms`)), this.#options.sendTimeoutMs)
    })
    const send = this.#producer.send({
      topic: this.#options.topic,
      acks: -1,
      timeout: this.#options.sendTimeoutMs,
      messages: notifications.map((notification) => {
        const record = encodeNotification(notification)
        return { key: record.key, value: record.value, headers: record.headers, timestamp: String(Date.parse(notification.createdAt)) }
      })
    })
    try {
      await Promise.race([send, timeout])
    } catch (error) {
      send.catch(() => {})
      if (error instanceof KafkaUnavailableError) throw error
      throw new KafkaUnavailableError(`Kafka is unavailable: ${(error as Error).message}`, error)
    } finally {
      clearTimeout(timer)
    }
  }

  async startConsuming (handler: BatchHandler): Promise<void> {
    const consumer = this.#kafka.consumer({
      groupId: this.#options.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: 10000,
      heartbeatInterval: 1000,
      // Only an idle fetch waits this long (data ends it at once); short, so pause and stop are quick.
      maxWaitTimeInMs: 500,
      retry: {
        initialRetryTime: 300,
        maxRetryTime: 5000,
        retries: 8,
        // A broker outage exhausts the retries; restart the consumer rather than give up.
        restartOnFailure: async () => true
      }
    })
    this.#consumer = consumer
    const { topic } = this.#options
    const committer = new OffsetCommitter({
      intervalMs: COMMIT_INTERVAL_MS,
      beforeCommit: this.#options.beforeCommit,
      commit: (offsets) => consumer.commitOffsets(offsets.map((offset) => ({ topic, ...offset })))
    }, this.#log)
    this.#committer = committer
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.#groupJoined = true
      committer.keepOnly(payload.memberAssignment[topic] ?? [])
    })
    consumer.on(consumer.events.REBALANCING, () => { this.#markConsumerDown('consumer group rebalancing') })
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      this.#log.warn({ err: payload.error, restart: payload.restart }, 'Kafka consumer crashed')
      this.#markConsumerDown(`consumer crashed: ${payload.error.message}`)
    })
    consumer.on(consumer.events.STOP, () => { this.#markConsumerDown('consumer stopped') })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return
        const handling = this.#handleBatch(batch.topic, batch.partition, batch.messages, handler)
        this.#batchInFlight = handling
        await handling
        const last = batch.lastOffset()
        resolveOffset(last)
        committer.handled(batch.partition, last)
        await heartbeat()
        this.#options.onLag?.(batch.partition, Number(batch.offsetLag()))
      }
    })
    committer.start()
    await joined
  }

  async #handleBatch (topic: string, partition: number, messages: KafkaMessage[], handler: BatchHandler): Promise<void> {
    const accepted: ConsumedNotification[] = []
    const rejected: Array<{ message: KafkaMessage, kind: DeadLetterKind, reason: string }> = []
    for (const message of messages) {
      const verdict = decodeRecord(message.key, message.value, this.#options.isKnownUser)
      if (verdict.ok) {
        accepted.push({ notification: verdict.notification, timestamp: Number(message.timestamp), topic, partition, offset: message.offset })
      } else {
        rejected.push({ message, kind: verdict.kind, reason: verdict.reason })
      }
    }
    if (rejected.length > 0) await this.#deadLetter(topic, partition, rejected)
    if (accepted.length > 0) await handler(accepted)
  }

  async #deadLetter (topic: string, partition: number, rejected: Array<{ message: KafkaMessage, kind: DeadLetterKind, reason: string }>): Promise<void> {
    const at = new Date().toISOString()
    await this.#producer.send({
      topic: this.#options.dlqTopic,
      acks: -1,
      messages: rejected.map(({ message, reason }) => ({
        key: message.key,
        value: message.value,
        headers: {
          ...message.headers,
          [RECORD_HEADERS.DLQ_REASON]: reason,
          [RECORD_HEADERS.DLQ_TOPIC]: topic,
          [RECORD_HEADERS.DLQ_PARTITION]: String(partition),
          [RECORD_HEADERS.DLQ_OFFSET]: message.offset,
          [RECORD_HEADERS.DLQ_AT]: at
        }
      }))
    })
    for (const { message, kind, reason } of rejected) {
      this.#log.warn({ topic, partition, offset: message.offset, reason }, 'Dead-lettered a Kafka record')
      this.#options.onDeadLetter?.(kind)
    }
  }

  #markConsumerDown (reason: string): void {
    this.#groupJoined = false
    this.#consumerProblem = reason
  }

  async health (): Promise<Health> {
    const reasons: string[] = []
    if (this.#consumer === undefined) reasons.push('consumer not started')
    else if (!this.#groupJoined) reasons.push(this.#consumerProblem)
    this.#probe ??= this.#probeBroker().finally(() => { this.#probe = undefined })
    const brokerProblem = await this.#probe
    if (brokerProblem !== undefined) reasons.push(brokerProblem)
    return { ok: reasons.length === 0, reasons }
  }

  /** A real request, bounded in time: the only reliable sign that the broker answers. */
  async #probeBroker (): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`Kafka did not answer within ${HEALTH_PROBE_TIMEOUT_MS} ms`), HEALTH_PROBE_TIMEOUT_MS)
    })
    const probe = this.#admin.describeCluster().then(() => undefined, (error: Error) => `Kafka unreachable: ${error.message}`)
    try {
      return await Promise.race([probe, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  async close (): Promise<void> {
    const consumer = this.#consumer
    if (consumer !== undefined) {
      // Stop fetching, let the batch in hand finish, commit everything handled, then leave the group.
      consumer.pause([{ topic: this.#options.topic }])
      await this.#batchInFlight?.catch(() => {})
      await this.#committer?.stop()
      await consumer.disconnect()
    }
    await this.#producer.disconnect()
    await this.#admin.disconnect()
  }
}
