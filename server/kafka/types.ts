import type { Notification } from '../notification.js'

/** A notification read back from the topic, with where it came from. */
export interface ConsumedNotification {
  notification: Notification
  /** The record's timestamp (ms since epoch): when the producer wrote it. */
  timestamp: number
  topic: string
  partition: number
  offset: string
}

/**
 * Called once per consumed batch with the records that passed validation, in partition order.
 * Offsets are committed only after it resolves; if it throws, the batch is consumed again.
 */
export type BatchHandler = (batch: ConsumedNotification[]) => Promise<void>

export interface Health { ok: boolean, reasons: string[] }

/**
 * The gateway's view of Kafka: publish notifications, consume them back in the group, and say
 * whether both sides are connected. Everything kafkajs stays behind this interface.
 */
export interface NotificationBus {
  /** Resolves once Kafka acknowledged the record (acks=-1); rejects with KafkaUnavailableError. */
  publish (notification: Notification): Promise<void>
  /** Joins the consumer group and hands every valid notification to `handler`. */
  startConsuming (handler: BatchHandler): Promise<void>
  health (): Promise<Health>
  /** Stops consuming (committing what was handled), then flushes and disconnects the producer. */
  close (): Promise<void>
}

/** Why a record went to the dead-letter topic; a closed list, so metrics labels stay bounded. */
export type DeadLetterKind = 'empty' | 'too-large' | 'not-json' | 'invalid' | 'missing-key' | 'key-mismatch' | 'unknown-user'

export type RecordVerdict =
  | { ok: true, notification: Notification }
  | { ok: false, kind: DeadLetterKind, reason: string }
