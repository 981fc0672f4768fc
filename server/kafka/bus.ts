import { Partitioners, type Consumer, type Kafka, type KafkaMessage, type Producer } from 'kafkajs'
import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import type { Notification } from '../notification.js'
import { systemClock, type Clock } from '../clock.js'
import { boundedProbe, closeInOrder, type CloseStep, type Unready } from '../lifecycle.js'
import { createKafkaClient } from './client.js'
import { KafkaErrorCode, KafkaUnavailableError, RecordTooLargeError } from './errors.js'
import { BATCH_OVERHEAD_BYTES, decodeRecord, encodedSize, encodeNotification, MAX_RECORD_BYTES, RECORD_HEADERS, type EncodedRecord } from './record.js'
import { BatchPipeline } from './batch-pipeline.js'
import { OffsetCommitter } from './offset-committer.js'
import { SendBatcher } from './send-batcher.js'
import { durabilityProblems, ensureTopics, type TopicSpec } from './topics.js'
import type { BatchHandler, ConsumedRecord, ConsumerCrash, DeadLetterKind, Health, NotificationBus, PartitionPosition, ProducerStats } from './types.js'

/** The configuration's Kafka settings the bus works with (KAFKA_*), the brokers it reaches, and what it tells the gateway. */
export type KafkaBusOptions = Pick<Config['kafka'], 'clientId' | 'topic' | 'dlqTopic' | 'partitions' | 'replicationFactor' | 'minInsyncReplicas' | 'groupId' | 'sendTimeoutMs'> & {
  brokers: string[]
  /** Told about every dead-lettered record (for metrics). */
  onDeadLetter?: (kind: DeadLetterKind) => void
  /**
   * Whether the handler's failure passes by itself (the inbox is unreachable): then the same
   * batches are handled again, with backoff, and the consumer keeps its partitions. Any other
   * failure restarts the consumer.
   */
  isTransientFailure?: (error: Error) => boolean
  /**
   * Whether the handler's failure is the store refusing records as they are (and for good): then
   * the records are handed to it again, half as many at a time and in order, until the ones it
   * refuses alone are found; those are dead-lettered (kind `refused`), the others stored. Any other
   * failure stays a failure of the batch.
   */
  isRecordRefusal?: (error: Error) => boolean
  /**
   * Where the store of the consumed records stands in each partition of the topic, given the
   * group's committed offsets of every partition (-1: none). Asked at start-up and at each
   * assignment, before any batch of the assignment is handled: an assigned partition whose stored
   * position is behind its committed offset (the store lost acknowledged writes: a failover to a
   * standby that lagged, a restore) is consumed again from the stored position.
   */
  storedPositions?: (committed: Map<number, bigint>) => Promise<Map<number, bigint>>
  /** Makes the handled notifications durable; runs before each offset commit. */
  beforeCommit: () => Promise<void>
  /** Told after each batch how far the partition's consumer is behind. */
  onLag?: (partition: number, lag: number) => void
  /** Told about every consumer crash, and about each restart the gateway makes itself (for metrics). */
  onConsumerCrash?: (crash: ConsumerCrash) => void
  onConsumerRestart?: () => void
  /** Told each time the consumer begins holding its batches after a failure that passes (for metrics). */
  onConsumerHold?: () => void
  clock?: Clock
}

/** A record as it goes into a produce request. */
interface OutgoingRecord extends EncodedRecord { timestamp: string }

/** One partition's fetched batch, waiting in the pipeline, with the assignment it was fetched under. */
interface FetchedBatch {
  generation: number
  topic: string
  partition: number
  messages: KafkaMessage[]
  lastOffset: string
  lag: number
  /** Offsets of its records already in the DLQ: a retry of the batch (inbox unavailable) must not send them again. */
  deadLettered: Set<string>
}

/** A record to dead-letter, and why. */
interface DeadLetter { message: KafkaMessage, kind: DeadLetterKind, reason: string }

/** 2, not 4: fewer, larger produce requests measured 5-10% more follows/s at 10-100 connections. */
const MAX_IN_FLIGHT_SENDS = 2
const MAX_BATCH_SIZE = 1000
/** Publishes that may wait for a produce slot; a few full batches' worth, a few MB at most. */
const MAX_QUEUED_SENDS = 10_000
/** The broker's default message.max.bytes, for when the topic's own limit cannot be read. */
const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
const HEALTH_PROBE_TIMEOUT_MS = 1500
/** Fetched batches that may wait to be handled while kafkajs fetches the next ones. */
const MAX_QUEUED_BATCHES = 8
/** How often handled offsets are committed; a crash consumes at most this much again. */
const COMMIT_INTERVAL_MS = 1000
/** Restarts after a crash kafkajs gives up on: 1 s, 2 s, 4 s… up to 30 s, until a batch succeeds. */
const RESTART_BASE_MS = 1000
const RESTART_MAX_MS = 30_000
/** Tries of a batch after a transient failure: 200 ms, 400 ms… up to 2 s, so a store that is back is used within 2 s. */
const RETRY_BASE_MS = 200
const RETRY_MAX_MS = 2000
/**
 * Stalled longer than this, the pipeline's failure counts as for good: the consumer restarts, leaving the
 * group meanwhile. If the inbox is down for every gateway, nothing changes but a rebalance now and
 * then; if only this gateway cannot reach it (its network, PostgreSQL's connection limit), the
 * others take its partitions instead of waiting for it.
 */
const STALL_LIMIT_MS = 30_000
/**
 * The least time from the start of one fetch that returned records to the start of the next: at a
 * low rate every record came in a fetch of its own (and so in its own inbox transaction, its own
 * round of socket writes), a fixed cost per record. A record that arrives sooner waits at most
 * this long; a fetch that finds nothing waits at the broker as before (maxWaitTimeInMs).
 */
const FETCH_PACE_MS = 2
/** kafkajs's heartbeat interval; a push waiting for room heartbeats this often, as fetching would. */
const HEARTBEAT_INTERVAL_MS = 1000
/** Each step of close(); a broker that is gone must not hold the shutdown past its grace period. */
const CLOSE_STEP_TIMEOUT_MS = 3000

/** Connects to Kafka, creates the topics if needed and returns the gateway's bus. */
export async function createKafkaBus (options: KafkaBusOptions, log: Logger): Promise<NotificationBus> {
  const lifecycle = { closing: false }
  const kafka = createKafkaClient({
    brokers: options.brokers,
    clientId: options.clientId,
    requestTimeoutMs: options.sendTimeoutMs,
    closing: () => lifecycle.closing
  }, log)
  const admin = kafka.admin()
  await admin.connect()
  let maxMessageBytes: number
  try {
    const specs: TopicSpec[] = [
      { topic: options.topic, partitions: options.partitions, replicationFactor: options.replicationFactor, minInsyncReplicas: options.minInsyncReplicas },
      { topic: options.dlqTopic, partitions: 1, replicationFactor: options.replicationFactor, minInsyncReplicas: options.minInsyncReplicas }
    ]
    const states = await ensureTopics(admin, specs)
    specs.forEach((spec, index) => {
      const state = states[index]!
      for (const problem of durabilityProblems(spec, state)) {
        log.warn({ topic: spec.topic, minInsyncReplicas: state.minInsyncReplicas, replicationFactor: state.replicationFactor }, `Kafka topic cannot keep the 202 promise: ${problem}`)
      }
    })
    maxMessageBytes = states[0]?.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    // Before the gateway serves anything: a store that lost writes begins its new epoch now.
    await options.storedPositions?.(await committedOffsets(admin, options.groupId, options.topic))
  } catch (error) {
    await admin.disconnect()
    throw error
  }
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 100, maxRetryTime: 500, retries: 2 }
  })
  try {
    await producer.connect()
  } catch (error) {
    await admin.disconnect()
    throw error
  }
  return new KafkaBus(kafka, admin, producer, { ...options, maxMessageBytes }, log, lifecycle)
}

class KafkaBus implements NotificationBus {
  readonly #kafka: Kafka
  readonly #admin: ReturnType<Kafka['admin']>
  readonly #producer: Producer
  readonly #options: KafkaBusOptions
  readonly #log: Logger
  readonly #clock: Clock
  readonly #batcher: SendBatcher<OutgoingRecord>
  readonly #committer: OffsetCommitter
  readonly #pipeline: BatchPipeline<FetchedBatch>
  #handler: BatchHandler | undefined
  #consumer: Consumer | undefined
  /** The consumer whose run() was called: until then it fetches nothing, and kafkajs refuses to pause it. */
  #running: Consumer | undefined
  /** Counts group joins: a batch's offsets belong to the join (generation) it was fetched under. */
  #generation = 0
  /** Why the consumer is not in the group now; undefined while it is. */
  #consumerProblem: Unready | undefined = { reason: 'consumer not started' }
  #restartAttempts = 0
  /** Resolves once the current assignment's partitions were checked against the store (and moved back where it lost writes). */
  #positionsChecked: Promise<void> = Promise.resolve()
  /** The generation whose positions were checked: batches of it need not wait. */
  #checkedGeneration = 0
  #cancelRestart: (() => void) | undefined
  /** When the consumer's latest fetch began (its clock's time): the next one waits for FETCH_PACE_MS after it. */
  #fetchStartedAt = Number.NEGATIVE_INFINITY
  /** Set once close() begins; shared with the Kafka client's logging (see createKafkaClient). */
  readonly #lifecycle: { closing: boolean }
  #closed: Promise<void> | undefined
  /** A real request, bounded in time: the only reliable sign that the broker answers. */
  readonly #probeBroker = boundedProbe(
    () => this.#admin.describeCluster().then(() => undefined, (error: Error): Unready => ({ reason: 'Kafka unreachable', detail: error.message })),
    HEALTH_PROBE_TIMEOUT_MS,
    (): Unready => ({ reason: `Kafka did not answer within ${HEALTH_PROBE_TIMEOUT_MS} ms` })
  )

  constructor (kafka: Kafka, admin: ReturnType<Kafka['admin']>, producer: Producer, options: KafkaBusOptions & { maxMessageBytes: number }, log: Logger, lifecycle: { closing: boolean }) {
    this.#kafka = kafka
    this.#lifecycle = lifecycle
    this.#admin = admin
    this.#producer = producer
    this.#options = options
    this.#log = log
    this.#clock = options.clock ?? systemClock
    this.#batcher = new SendBatcher<OutgoingRecord>({
      maxInFlight: MAX_IN_FLIGHT_SENDS,
      maxBatchSize: MAX_BATCH_SIZE,
      maxBatchBytes: options.maxMessageBytes - BATCH_OVERHEAD_BYTES,
      sizeOf: encodedSize,
      timeoutMs: options.sendTimeoutMs,
      maxQueued: MAX_QUEUED_SENDS,
      clock: this.#clock,
      send: (messages) => this.#send(messages)
    })
    this.#committer = new OffsetCommitter({
      intervalMs: COMMIT_INTERVAL_MS,
      beforeCommit: options.beforeCommit,
      clock: this.#clock,
      commit: (offsets) => this.#commit(offsets)
    }, log)
    this.#pipeline = new BatchPipeline<FetchedBatch>({
      maxQueued: MAX_QUEUED_BATCHES,
      handle: (batches) => this.#handleBatches(batches),
      ...(options.isTransientFailure === undefined ? {} : { isTransient: options.isTransientFailure }),
      held: () => options.onConsumerHold?.(),
      retryDelayMs: (attempt) => Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (attempt - 1)),
      stallLimitMs: STALL_LIMIT_MS,
      keepAliveMs: HEARTBEAT_INTERVAL_MS,
      clock: this.#clock,
      failed: (error) => {
        if (this.#consumer !== undefined) this.#restartLater(this.#consumer, error, 'an error in the delivery path')
      }
    })
  }

  publish (notifications: readonly Notification[], deadline?: number): Promise<void> {
    if (this.#lifecycle.closing) return Promise.reject(new KafkaUnavailableError('the gateway is closing its Kafka clients', { code: KafkaErrorCode.CLOSED }))
    const records: OutgoingRecord[] = []
    for (const notification of notifications) {
      const record = encodeNotification(notification)
      // Our own consumer dead-letters anything bigger: better to refuse it here, to this caller.
      const valueBytes = Buffer.byteLength(record.value)
      if (valueBytes > MAX_RECORD_BYTES) return Promise.reject(new RecordTooLargeError(valueBytes, MAX_RECORD_BYTES))
      records.push({ ...record, timestamp: String(Date.parse(notification.createdAt)) })
    }
    const [only] = records
    return records.length === 1 ? this.#batcher.add(only!, deadline) : this.#batcher.addAll(records, deadline)
  }

  producerStats (): ProducerStats {
    return { queued: this.#batcher.queued, inFlight: this.#batcher.inFlight }
  }

  async #send (messages: OutgoingRecord[]): Promise<void> {
    try {
      await this.#producer.send({ topic: this.#options.topic, acks: -1, timeout: this.#options.sendTimeoutMs, messages })
    } catch (error) {
      throw new KafkaUnavailableError(`Kafka is unavailable: ${(error as Error).message}`, { cause: error })
    }
  }

  startConsuming (handler: BatchHandler): void {
    if (this.#handler !== undefined) return
    this.#handler = handler
    this.#consumerProblem = { reason: 'consumer group not joined yet' }
    this.#committer.start()
    void this.#startConsumer()
  }

  /**
   * Runs one kafkajs consumer in the background. Joining may take a while (a dead member holds the
   * group for its session timeout), so nobody waits for it: health() says when it is joined.
   */
  async #startConsumer (): Promise<void> {
    if (this.#lifecycle.closing) return
    const consumer = this.#kafka.consumer({
      groupId: this.#options.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: 10000,
      heartbeatInterval: HEARTBEAT_INTERVAL_MS,
      // Only an idle fetch waits this long (data ends it at once); short, so pause and stop are quick.
      maxWaitTimeInMs: 500,
      retry: {
        initialRetryTime: 300,
        maxRetryTime: 5000,
        retries: 8,
        // A broker outage exhausts the retries: kafkajs restarts the consumer, unless we are closing.
        restartOnFailure: async () => !this.#lifecycle.closing
      }
    })
    this.#consumer = consumer
    this.#pipeline.restart()
    this.#watch(consumer)
    const { topic } = this.#options
    try {
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      // close() may have begun meanwhile: it disconnects this consumer, which must not start after.
      if (this.#lifecycle.closing) return
      this.#running = consumer
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        // Every partition's batch of a fetch at once: each queues at once, and all wait for the fetch's pace together.
        partitionsConsumedConcurrently: this.#options.partitions,
        // The batch is only queued here: kafkajs fetches the next one while it is handled. Its
        // offsets are committed once it is handled (the committer), not when it is resolved.
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          if (!isRunning() || isStale() || batch.messages.length === 0 || consumer !== this.#consumer) return
          const generation = this.#generation
          if (this.#checkedGeneration !== generation) await this.#whileHeartbeating(this.#positionsChecked, heartbeat)
          // A partition moved back (a seek) makes its batches fetched before it stale.
          if (!isRunning() || isStale() || consumer !== this.#consumer || generation !== this.#generation) return
          const lastOffset = batch.lastOffset()
          // A stalled pipeline (the inbox is down) fills up: the push waits, heartbeating meanwhile.
          await this.#pipeline.push({
            generation: this.#generation, topic: batch.topic, partition: batch.partition, messages: batch.messages, lastOffset, lag: Number(batch.offsetLag()), deadLettered: new Set()
          }, heartbeat)
          resolveOffset(lastOffset)
          await heartbeat()
          const early = this.#fetchStartedAt + FETCH_PACE_MS - this.#clock.now()
          if (early > 0) await new Promise<void>((resolve) => { this.#clock.schedule(resolve, early) })
        }
      })
    } catch (error) {
      this.#restartLater(consumer, error as Error)
    }
  }

  #watch (consumer: Consumer): void {
    const current = (): boolean => consumer === this.#consumer && !this.#lifecycle.closing
    consumer.on(consumer.events.FETCH_START, () => { this.#fetchStartedAt = this.#clock.now() })
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      if (!current()) return
      this.#generation++
      const partitions = payload.memberAssignment[this.#options.topic] ?? []
      this.#committer.assigned(this.#generation, partitions)
      this.#positionsChecked = this.#checkPositions(consumer, this.#generation, partitions)
    })
    consumer.on(consumer.events.REBALANCING, () => {
      if (!current()) return
      this.#committer.revoked()
      this.#consumerProblem = { reason: 'consumer group rebalancing' }
    })
    consumer.on(consumer.events.STOP, () => {
      if (!current()) return
      this.#committer.revoked()
      this.#consumerProblem = { reason: 'consumer stopped' }
    })
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!current()) return
      this.#committer.revoked()
      if (payload.restart) {
        this.#log.warn({ err: payload.error }, 'Kafka consumer crashed; kafkajs restarts it')
        this.#options.onConsumerCrash?.({ restartedBy: 'kafkajs' })
        this.#consumerProblem = { reason: 'consumer crashed, restarting', detail: payload.error.message }
      } else {
        this.#restartLater(consumer, payload.error)
      }
    })
  }

  /**
   * kafkajs stops a consumer for good on an error it deems non-retriable (a bug in the handler, a
   * refused group): while POSTs still get 202, nothing would be delivered. Start a new one, later
   * each time, and say so in health() meanwhile.
   */
  #restartLater (consumer: Consumer, error: Error, cause = 'a non-retriable error'): void {
    if (consumer !== this.#consumer || this.#lifecycle.closing) return
    this.#committer.revoked()
    this.#pipeline.stop()
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** this.#restartAttempts)
    this.#restartAttempts++
    this.#log.error({ err: error, restartInMs: delay }, `Kafka consumer stopped after ${cause}; the gateway restarts it`)
    this.#options.onConsumerCrash?.({ restartedBy: 'gateway' })
    this.#consumerProblem = { reason: `consumer stopped after ${cause}; restarting it`, detail: `${error.message}; restarting it in ${delay} ms` }
    this.#consumer = undefined
    consumer.disconnect().catch(() => {})
    this.#cancelRestart = this.#clock.schedule(() => {
      this.#cancelRestart = undefined
      if (this.#lifecycle.closing) return
      this.#options.onConsumerRestart?.()
      this.#consumerProblem = { reason: `consumer restarted after ${cause}; group not joined yet`, detail: error.message }
      void this.#startConsumer()
    }, delay)
  }

  /**
   * Asks the store where it stands (storedPositions) and moves each assigned partition it is behind
   * in back to its stored position, before any batch of this assignment is handled; tries again
   * while the store cannot answer, and gives the partitions up (a restart) after the stall limit, as
   * a held batch does. The consumer counts as joined only then.
   */
  async #checkPositions (consumer: Consumer, generation: number, partitions: number[]): Promise<void> {
    const { storedPositions, groupId, topic } = this.#options
    const current = (): boolean => consumer === this.#consumer && generation === this.#generation && !this.#lifecycle.closing
    if (storedPositions === undefined) {
      this.#checkedGeneration = generation
      this.#consumerProblem = undefined
      return
    }
    this.#consumerProblem = { reason: 'consumer group joined, checking the inbox\'s positions' }
    const since = this.#clock.now()
    for (let attempt = 1; current(); attempt++) {
      try {
        const committed = await committedOffsets(this.#admin, groupId, topic)
        const stored = await storedPositions(committed)
        if (!current()) return
        for (const partition of partitions) {
          const position = stored.get(partition) ?? 0n
          const offset = committed.get(partition) ?? -1n
          if (position >= offset) continue
          this.#log.warn({ partition, stored: position.toString(), committed: offset.toString() }, 'The inbox is behind the group\'s committed offset: consuming the partition again from its stored position')
          consumer.seek({ topic, partition, offset: position.toString() })
        }
        break
      } catch (error) {
        if (!current()) return
        if (this.#clock.now() - since >= STALL_LIMIT_MS) {
          this.#restartLater(consumer, error as Error, 'the inbox\'s positions could not be checked')
          return
        }
        this.#consumerProblem = { reason: 'consumer checking the inbox\'s positions, retrying', detail: (error as Error).message }
        await new Promise<void>((resolve) => { this.#clock.schedule(resolve, Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (attempt - 1))) })
      }
    }
    if (!current()) return
    this.#checkedGeneration = generation
    this.#consumerProblem = undefined
  }

  /** Waits for `work`, heartbeating meanwhile as fetching would (a wait may outlast the session timeout); rejects with what `heartbeat` throws (a rebalance). */
  async #whileHeartbeating (work: Promise<void>, heartbeat: () => Promise<void>): Promise<void> {
    const done = work.then(() => true)
    for (;;) {
      let cancel: () => void = () => {}
      const finished = await Promise.race([done, new Promise<boolean>((resolve) => { cancel = this.#clock.schedule(() => resolve(false), HEARTBEAT_INTERVAL_MS) })])
      cancel()
      if (finished) return
      await heartbeat()
    }
  }

  /** Commits through the consumer that holds the assignment; true only if the coordinator stored it. */
  async #commit (offsets: Array<{ partition: number, offset: string }>): Promise<boolean> {
    const consumer = this.#consumer
    if (consumer === undefined) return false
    const { topic } = this.#options
    let stored = false
    const stopListening = consumer.on(consumer.events.COMMIT_OFFSETS, ({ payload }) => {
      if (payload.topics.some((committed) => committed.topic === topic)) stored = true
    })
    try {
      await consumer.commitOffsets(offsets.map((offset) => ({ topic, ...offset })))
    } finally {
      stopListening()
    }
    return stored
  }

  /** Handles the batches that queued up, several partitions' in one handler call, in order. */
  async #handleBatches (batches: FetchedBatch[]): Promise<void> {
    const accepted: ConsumedRecord[] = []
    const positions: PartitionPosition[] = []
    /** Where each accepted record came from, should the store refuse it. */
    const sources = new Map<ConsumedRecord, { batch: FetchedBatch, message: KafkaMessage }>()
    for (const batch of batches) {
      const { topic, partition, messages } = batch
      const rejected: DeadLetter[] = []
      for (const message of messages) {
        const verdict = decodeRecord(message.key, message.value, { topic, partition, offset: message.offset, timestamp: message.timestamp })
        if (verdict.ok) {
          const consumed = { notification: verdict.notification, json: verdict.json, timestamp: Number(message.timestamp), topic, partition, offset: message.offset }
          accepted.push(consumed)
          sources.set(consumed, { batch, message })
        } else {
          rejected.push({ message, kind: verdict.kind, reason: verdict.reason })
        }
      }
      await this.#deadLetter(batch, rejected)
      positions.push({ topic, partition, nextOffset: (BigInt(batch.lastOffset) + 1n).toString() })
    }
    try {
      await this.#handler!(accepted, positions)
    } catch (error) {
      if (this.#options.isRecordRefusal?.(error as Error) !== true) throw error
      await this.#storeWithout(accepted, error as Error, async (refused, why) => {
        const { batch, message } = sources.get(refused)!
        await this.#deadLetter(batch, [{ message, kind: 'refused', reason: `refused: ${why.message}` }])
      })
      // The refused ones are in the DLQ: the positions may go past them now.
      await this.#handler!([], positions)
    }
    for (const { generation, partition, lastOffset, lag } of batches) {
      this.#committer.handled(generation, partition, lastOffset)
      this.#options.onLag?.(partition, lag)
    }
    this.#restartAttempts = 0
  }

  /**
   * Stores `records`, which the store refused together (`refusal`), without the ones it refuses
   * alone: halves, in order, each handed to the handler again (without positions: a refused record
   * must be in the DLQ before a position goes past it), split further while refused. The records a
   * store refuses are few, so this costs a few calls per refused record.
   */
  async #storeWithout (records: ConsumedRecord[], refusal: Error, refused: (record: ConsumedRecord, why: Error) => Promise<void>): Promise<void> {
    if (records.length === 1) {
      await refused(records[0]!, refusal)
      return
    }
    const half = Math.ceil(records.length / 2)
    for (const part of [records.slice(0, half), records.slice(half)]) {
      try {
        await this.#handler!(part, [])
      } catch (error) {
        if (this.#options.isRecordRefusal?.(error as Error) !== true) throw error
        await this.#storeWithout(part, error as Error, refused)
      }
    }
  }

  /** Sends `rejected` to the DLQ, but those of `batch` already there (a retried batch). */
  async #deadLetter (batch: FetchedBatch, records: DeadLetter[]): Promise<void> {
    const { topic, partition, deadLettered } = batch
    const rejected = records.filter(({ message }) => !deadLettered.has(message.offset))
    if (rejected.length === 0) return
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
      deadLettered.add(message.offset)
      this.#log.warn({ topic, partition, offset: message.offset, reason }, 'Dead-lettered a Kafka record')
      this.#options.onDeadLetter?.(kind)
    }
  }

  async health (): Promise<Health> {
    const reasons: Unready[] = []
    if (this.#consumerProblem !== undefined) reasons.push(this.#consumerProblem)
    const stalledBy = this.#pipeline.stalledBy
    if (stalledBy !== undefined) reasons.push({ reason: 'consumer holding its batches, retrying', detail: stalledBy.message })
    const brokerProblem = await this.#probeBroker()
    if (brokerProblem !== undefined) reasons.push(brokerProblem)
    return { ok: reasons.length === 0, reasons }
  }

  close (): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  /**
   * Stops fetching, lets the batch in hand finish, commits everything handled, leaves the group,
   * then disconnects the producer. Each step runs whatever the one before did: during an outage
   * kafkajs throws from pause() (its crashed consumer has no group), and the rest must still close.
   * A consumer closed before it ran (a Ctrl-C right after start-up) has no fetching to stop.
   */
  async #close (): Promise<void> {
    this.#lifecycle.closing = true
    this.#cancelRestart?.()
    const consumer = this.#consumer
    const steps: CloseStep[] = consumer === undefined
      ? [{ name: 'Kafka: stop the offset committer', close: () => this.#committer.stop() }]
      : [
          { name: 'Kafka: stop fetching', close: () => { if (this.#running === consumer) consumer.pause([{ topic: this.#options.topic }]) } },
          { name: 'Kafka: finish the batches in hand', close: () => this.#pipeline.drained() },
          // Those still stalled (the inbox is down) are consumed again from the committed offsets.
          { name: 'Kafka: drop the batches it could not handle', close: () => this.#pipeline.stop() },
          { name: 'Kafka: commit handled offsets', close: () => this.#committer.stop() },
          { name: 'Kafka: leave the consumer group', close: () => consumer.disconnect() }
        ]
    steps.push(
      { name: 'Kafka: disconnect the producer', close: () => this.#producer.disconnect() },
      { name: 'Kafka: disconnect the admin client', close: () => this.#admin.disconnect() }
    )
    await closeInOrder(steps, this.#log, { stepTimeoutMs: CLOSE_STEP_TIMEOUT_MS, doneLevel: 'debug' })
  }
}

/** The group's committed offset of every partition of `topic` (-1: none yet). */
async function committedOffsets (admin: ReturnType<Kafka['admin']>, groupId: string, topic: string): Promise<Map<number, bigint>> {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
  return new Map((offsets?.partitions ?? []).map(({ partition, offset }) => [partition, BigInt(offset)]))
}
