import { randomUUID } from 'node:crypto'
import type { FromSchema } from 'json-schema-to-ts'
import { USER_ID_PATTERN, userRefSchema, type User } from './directory.js'

/** The kinds of notification. `message` carries free text (the Go tutorial's `POST /send`). */
export const NotificationType = { FOLLOW: 'follow', MESSAGE: 'message' } as const
export type NotificationType = typeof NotificationType[keyof typeof NotificationType]

export const MAX_MESSAGE_LENGTH = 1000

/** ISO 8601 in UTC, as `toISOString` writes it (up to nanoseconds); its fields are checked by `isCalendarInstant`. */
const CREATED_AT_PATTERN = '^(\\d{4})-(\\d{2})-(\\d{2})T(\\d{2}):(\\d{2}):(\\d{2})(\\.\\d{1,9})?Z$'
const CREATED_AT = new RegExp(CREATED_AT_PATTERN)

/** The notification as it travels everywhere: Kafka record value, WebSocket frame, history item. */
export const notificationSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'type', 'userId', 'actor', 'message', 'createdAt'],
  properties: {
    id: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' },
    type: { enum: Object.values(NotificationType) },
    userId: { type: 'string', pattern: USER_ID_PATTERN },
    actor: { anyOf: [userRefSchema, { type: 'null' }] },
    message: { type: 'string', minLength: 1, maxLength: MAX_MESSAGE_LENGTH },
    createdAt: { type: 'string', pattern: CREATED_AT_PATTERN }
  }
} as const

export type Notification = FromSchema<typeof notificationSchema>

/**
 * Whether a `createdAt` of the schema's format names an instant of the calendar: years 1 to 9999,
 * a day the month has, hours 0–23. Date.parse takes 2025-02-29 for March 1st, 24:00 for the next
 * day and year 0, which PostgreSQL refuses (or reads otherwise): such a record would be stored by
 * one inbox and refused by the other, so both refuse it where it is decoded.
 */
export function isCalendarInstant (createdAt: string): boolean {
  const fields = CREATED_AT.exec(createdAt)
  if (fields === null) return false
  const [year, month, day, hour, minute, second] = fields.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  if (year < 1) return false
  // Date.UTC would read years 0-99 as 1900-1999; setUTCFullYear takes them as they are.
  const instant = new Date(0)
  instant.setUTCFullYear(year, month - 1, day)
  instant.setUTCHours(hour, minute, second)
  // Each field out of its range rolls over into the next one: the round trip tells.
  return instant.getUTCFullYear() === year && instant.getUTCMonth() === month - 1 && instant.getUTCDate() === day &&
    instant.getUTCHours() === hour && instant.getUTCMinutes() === minute && instant.getUTCSeconds() === second
}

export function followNotification (follower: User, followee: User, id = uuidv7()): Notification {
  return {
    id,
    type: NotificationType.FOLLOW,
    userId: followee.id,
    actor: { id: follower.id, name: follower.name },
    message: `${follower.name} started following you.`,
    createdAt: new Date().toISOString()
  }
}

export function messageNotification (sender: User, recipient: User, message: string, id = uuidv7()): Notification {
  return {
    id,
    type: NotificationType.MESSAGE,
    userId: recipient.id,
    actor: { id: sender.id, name: sender.name },
    message,
    createdAt: new Date().toISOString()
  }
}

/**
 * RFC 9562 UUIDv7: time-ordered, so ids sort roughly by creation and index well. Built on
 * randomUUID, whose random bits come from a pooled buffer (randomBytes per id was a visible cost).
 */
export function uuidv7 (now = Date.now()): string {
  const random = randomUUID() // xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx, V in 8..b
  const time = now.toString(16).padStart(12, '0')
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.slice(15)}`
}
