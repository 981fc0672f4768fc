import { Ajv, type ErrorObject } from 'ajv'
import { dataProblem, isCalendarInstant, notificationSchema, type Notification } from '../notification.js'
import { looksLikeTutorialRecord, tutorialNotification, validateTutorialRecord, type RecordOrigin } from './tutorial-record.js'
import type { DeadLetterKind, RecordVerdict } from './types.js'

/** The largest record value the consumer accepts; anything bigger is dead-lettered. */
export const MAX_RECORD_BYTES = 64 * 1024

export const RECORD_HEADERS = {
  CONTENT_TYPE: 'content-type',
  VERSION: 'notification-version',
  DLQ_REASON: 'dlq-reason',
  DLQ_TOPIC: 'dlq-source-topic',
  DLQ_PARTITION: 'dlq-source-partition',
  DLQ_OFFSET: 'dlq-source-offset',
  DLQ_AT: 'dlq-at'
} as const

export interface EncodedRecord {
  key: string
  value: string
  headers: Record<string, string>
}

/**
 * What one record adds to a record batch besides its key, value and header bytes, at most:
 * attributes (1), the timestamp delta (a varlong, 10), the offset delta (< 2^20 records, 3), the
 * record's own length (< 2 MiB, 3) and the header count (1). The lengths of the key, the value and
 * each header are zigzag varints, counted exactly.
 */
const RECORD_OVERHEAD_BYTES = 18
/** A record batch's own header (offset, length, leader epoch, magic, CRC…), once per partition in a request. */
export const BATCH_OVERHEAD_BYTES = 61

/** The size of the zigzag varint that encodes a length. */
function lengthBytes (length: number): number {
  let bytes = 1
  for (let zigzag = length * 2; zigzag >= 128; zigzag = Math.floor(zigzag / 128)) bytes++
  return bytes
}

function fieldBytes (text: string): number {
  const length = Buffer.byteLength(text)
  return lengthBytes(length) + length
}

/** How many bytes the record takes in a record batch, at most (no compression). */
export function encodedSize (record: EncodedRecord): number {
  let bytes = RECORD_OVERHEAD_BYTES + fieldBytes(record.key) + fieldBytes(record.value)
  for (const [name, value] of Object.entries(record.headers)) bytes += fieldBytes(name) + fieldBytes(value)
  return bytes
}

const validateNotification = new Ajv({ allErrors: false }).compile(notificationSchema)

/** The `notification-version` header: which value schema the record was written with (docs/events.md). */
export const VALUE_VERSION = '2'

/** Key = recipient, so one user's notifications stay in one partition, in order. */
export function encodeNotification (notification: Notification): EncodedRecord {
  return {
    key: notification.userId,
    value: JSON.stringify(notification),
    headers: { [RECORD_HEADERS.CONTENT_TYPE]: 'application/json', [RECORD_HEADERS.VERSION]: VALUE_VERSION }
  }
}

/**
 * Decides whether a consumed record is a notification the gateway can deliver: one of ours, or a
 * record of the Go tutorial's producer (`{ from, to, message }`), which becomes a `message`
 * notification (tutorial-record.ts). Every refusal has a reason, which goes into the dead-letter
 * record's `dlq-reason` header. The recipient is not looked up in this gateway's directory: a
 * record another producer (or a gateway with a newer USERS_FILE) had accepted must be stored, not
 * refused here.
 */
export function decodeRecord (key: Buffer | null, value: Buffer | null, origin: RecordOrigin): RecordVerdict {
  if (value === null || value.length === 0) return reject('empty', 'the value is empty')
  if (value.length > MAX_RECORD_BYTES) return reject('too-large', `the value has ${value.length} bytes, more than ${MAX_RECORD_BYTES}`)
  let parsed: unknown
  let json = value.toString('utf8')
  try {
    parsed = JSON.parse(json)
  } catch {
    return reject('not-json', 'the value is not JSON')
  }
  let notification: Notification
  if (looksLikeTutorialRecord(parsed)) {
    if (!validateTutorialRecord(parsed)) return reject('invalid', `${schemaProblem(validateTutorialRecord.errors)} (read as a Go tutorial record: it has no userId)`)
    notification = tutorialNotification(parsed, origin)
    json = JSON.stringify(notification)
  } else {
    if (!validateNotification(parsed)) return reject('invalid', schemaProblem(validateNotification.errors))
    notification = parsed as Notification
    if (!isCalendarInstant(notification.createdAt)) return reject('invalid', `value.createdAt is not a date of the calendar (${JSON.stringify(notification.createdAt)})`)
    const problem = notification.data === undefined ? undefined : dataProblem(notification.data)
    if (problem !== undefined) return reject('invalid', `value.data ${problem}`)
  }
  if (key === null || key.length === 0) return reject('missing-key', 'the key is missing (it must be the recipient id)')
  if (key.toString('utf8') !== notification.userId) return reject('key-mismatch', 'the key is not the recipient (value.userId, or value.to.id of a tutorial record)')
  return { ok: true, notification, json }
}

function schemaProblem (errors: ErrorObject[] | null | undefined): string {
  const error = errors?.[0]
  const where = error?.instancePath === '' ? 'value' : `value${error?.instancePath.replaceAll('/', '.') ?? ''}`
  const extra = error?.keyword === 'additionalProperties' ? ` (${String(error.params['additionalProperty'])})` : ''
  return `${where} ${error?.message ?? 'is invalid'}${extra}`
}

/** The reason goes into the `dlq-reason` header as `<kind>: <detail>`. */
function reject (kind: DeadLetterKind, detail: string): RecordVerdict {
  return { ok: false, kind, reason: `${kind}: ${detail}` }
}
