import { Ajv } from 'ajv'
import type { FromSchema } from 'json-schema-to-ts'
import { USER_ID_PATTERN } from '../directory.js'
import { MAX_MESSAGE_LENGTH, messageNotification, uuidv8, type Notification } from '../notification.js'

/**
 * A user as the Go tutorial's producer writes one (`encoding/json` of its `User` struct): the id
 * is a JSON number there; a string id of ours is taken too.
 */
const tutorialUserSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name'],
  properties: {
    id: {
      anyOf: [
        { type: 'integer', minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
        { type: 'string', pattern: USER_ID_PATTERN }
      ]
    },
    name: { type: 'string', minLength: 1, maxLength: 200 }
  }
} as const

/** The value the Go tutorial's producer writes: `{"from":{…},"to":{…},"message":"…"}`, keyed by the recipient's id. */
export const tutorialRecordSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to', 'message'],
  properties: {
    from: tutorialUserSchema,
    to: tutorialUserSchema,
    message: { type: 'string', minLength: 1, maxLength: MAX_MESSAGE_LENGTH }
  }
} as const

export type TutorialRecord = FromSchema<typeof tutorialRecordSchema>

export const validateTutorialRecord = new Ajv({ allErrors: false }).compile<TutorialRecord>(tutorialRecordSchema)

/** Where a record was read: what makes a tutorial record's notification the same on every read. */
export interface RecordOrigin {
  topic: string
  partition: number
  offset: string
  /** The record's timestamp, in ms since the epoch, as kafkajs gives it. */
  timestamp: string
}

/** A value meant as the tutorial's shape: it names a `to` or a `from`, and no `userId` (which ours always have). */
export function looksLikeTutorialRecord (value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  return !Object.hasOwn(value, 'userId') && (Object.hasOwn(value, 'to') || Object.hasOwn(value, 'from'))
}

/**
 * The tutorial record as a `message` notification from `from` to `to`. Its id comes from where the
 * record is (topic, partition, offset), so reading it again, on any gateway, makes the same
 * notification, which the inbox stores once; `createdAt` is the record's timestamp.
 */
export function tutorialNotification (record: TutorialRecord, origin: RecordOrigin): Notification {
  const id = uuidv8(`tutorial-record\u0000${origin.topic}\u0000${origin.partition}\u0000${origin.offset}`)
  const timestamp = Number(origin.timestamp)
  // A record without a timestamp (the old message format says -1) is dated when it is read.
  const createdAt = Number.isSafeInteger(timestamp) && timestamp >= 0 ? new Date(timestamp) : new Date()
  return messageNotification(
    { id: String(record.from.id), name: record.from.name },
    { id: String(record.to.id), name: record.to.name },
    record.message,
    id,
    createdAt
  )
}
