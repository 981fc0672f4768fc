import type { Notification } from '../notification.js'
import type { Unready } from '../lifecycle.js'

/** A consumed record: a notification read back from the topic, with where it came from; what the inbox stores. */
export interface ConsumedRecord {
  notification: Notification
  /** The record's value as text: the notification's JSON, validated, reused as is downstream. */
  json: string
  /** The record's timestamp (Unix time in ms): when the producer wrote it. */
  timestamp: number
  topic: string
  partition: number
  offset: string
}

/** How far a partition was consumed: the offset after the last record handled, dead letters included. */
export interface PartitionPosition {
  topic: string
  partition: number
  nextOffset: string
}

/**
 * Called once per consumed batch with the records that passed validation, in partition order, and
 * where each partition of the batch ends (its poison records included, so that a store keeping
 * positions can keep them past a dead-lettered tail). Offsets are committed only after it resolves;
 * if it throws, the batch is consumed again. Records a store refused (see `KafkaBusOptions`) are
 * handed to it again alone, with no positions, to find the ones it refuses.
 */
export type BatchHandler = (batch: ConsumedRecord[], positions: PartitionPosition[]) => Promise<void>

export interface Health { ok: boolean, reasons: Unready[] }

/** A consumer crash, and who starts the consumer again: kafkajs itself, or the gateway (non-retriable). */
export interface ConsumerCrash { restartedBy: 'kafkajs' | 'gateway' }

/** How much the producer holds: publishes waiting for a slot, and produce requests holding one. */
export interface ProducerStats { queued: number, inFlight: number }

/**
 * The gateway's view of Kafka: publish notifications, consume them back in the group, and say
 * whether both sides are connected. Everything kafkajs stays behind this interface.
 */
export interface NotificationBus {
  /**
   * Produces one record per notification, keyed by its recipient, in as few produce requests as
   * the batch limits allow. Resolves once Kafka acknowledged every one (acks=-1), by `deadline`
   * (milliseconds on the `performance.now()` clock; default: the send timeout from the call, e.g. a
   * request's arrival plus the send timeout, so that what the request did before counts too).
   * Rejects, once every record has settled, with a KafkaError: KafkaUnavailableError (retry later;
   * some records may be written) or RecordTooLargeError (one never fits; then none was sent).
   */
  publish (notifications: readonly Notification[], deadline?: number): Promise<void>
  /**
   * Starts consuming in the background and returns at once: joining the group may take long (a
   * dead member holds it for its session timeout). `health()` says until when. Hands every valid
   * notification to `handler`; a consumer that crashes is restarted.
   */
  startConsuming (handler: BatchHandler): void
  health (): Promise<Health>
  producerStats? (): ProducerStats
  /** Stops consuming (committing what was handled), then disconnects the producer; never throws. */
  close (): Promise<void>
}

/** Why a record went to the dead-letter topic; a closed list, so metrics labels stay bounded. */
export type DeadLetterKind = 'empty' | 'too-large' | 'not-json' | 'invalid' | 'missing-key' | 'key-mismatch' | 'refused'

export type RecordVerdict =
  | { ok: true, notification: Notification, json: string }
  | { ok: false, kind: DeadLetterKind, reason: string }
