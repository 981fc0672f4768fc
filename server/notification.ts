import { createHash, randomUUID } from 'node:crypto'
import type { FromSchema } from 'json-schema-to-ts'
import { USER_ID_PATTERN, userRefSchema, type User } from './directory.js'

/**
 * The types the gateway makes itself. Any other lowercase name is an app's own type
 * (`comment.reply`, `invoice.paid`): the gateway stores and delivers it without reading it.
 */
export const NotificationType = { FOLLOW: 'follow', MESSAGE: 'message' } as const

export const NOTIFICATION_TYPE_PATTERN = '^[a-z][a-z0-9_.-]{0,63}$'
export const MAX_MESSAGE_LENGTH = 1000
export const MAX_TITLE_LENGTH = 200
export const MAX_URL_LENGTH = 2048
/** A producer's own grouping key (issue "The inbox people expect" groups by it). */
export const GROUP_KEY_PATTERN = '^[A-Za-z0-9_.:-]{1,128}$'
/** `data` is for a client to render with, not a payload store: small, shallow, few keys. */
export const DATA_LIMITS = { maxBytes: 4096, maxDepth: 4, maxKeys: 64 } as const

/** ISO 8601 in UTC, as `toISOString` writes it (up to nanoseconds); its fields are checked by `isCalendarInstant`. */
const CREATED_AT_PATTERN = '^(\\d{4})-(\\d{2})-(\\d{2})T(\\d{2}):(\\d{2}):(\\d{2})(\\.\\d{1,9})?Z$'
const CREATED_AT = new RegExp(CREATED_AT_PATTERN)

/**
 * No control character, space or backslash anywhere: browsers read `\` as `/`, so `/\evil.example`
 * would be a link to another host.
 */
const URL_CHAR = '[^\\u0000-\\u0020\\u007f\\\\]'
/** An absolute http(s) URL with a host. */
const WEB_URL = `https?://[^\\u0000-\\u0020\\u007f\\\\/?#]+(?:[/?#]${URL_CHAR}*)?`
/**
 * Where a click on the notification leads: an absolute http(s) URL, or a path on the app's own
 * origin (`/…`, never `//…`, which is another host). `javascript:`, `data:` and every other scheme
 * cannot match, so a client may put it in an `href` as it is.
 */
export const LINK_PATTERN = `^(?:${WEB_URL}|/(?!/)${URL_CHAR}*)$`
export const WEB_URL_PATTERN = `^${WEB_URL}$`

/** Who caused a notification, as every notification shows them. */
export const actorSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name'],
  properties: {
    ...userRefSchema.properties,
    avatarUrl: { type: 'string', maxLength: MAX_URL_LENGTH, pattern: WEB_URL_PATTERN }
  }
} as const

/**
 * The notification as it travels everywhere: Kafka record value, WebSocket frame, history item.
 * Version 2 of the value (docs/events.md): version 1 had only `follow` and `message` and none of
 * the optional fields, so every version 1 value is a valid version 2 value.
 */
export const notificationSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'type', 'userId', 'actor', 'message', 'createdAt'],
  properties: {
    id: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' },
    type: { type: 'string', pattern: NOTIFICATION_TYPE_PATTERN },
    userId: { type: 'string', pattern: USER_ID_PATTERN },
    actor: { anyOf: [actorSchema, { type: 'null' }] },
    message: { type: 'string', minLength: 1, maxLength: MAX_MESSAGE_LENGTH },
    createdAt: { type: 'string', pattern: CREATED_AT_PATTERN },
    title: { type: 'string', minLength: 1, maxLength: MAX_TITLE_LENGTH },
    url: { type: 'string', maxLength: MAX_URL_LENGTH, pattern: LINK_PATTERN },
    data: {
      type: 'object',
      // The default, said out loud: Fastify's serializer drops the properties a response schema does not allow.
      additionalProperties: true,
      maxProperties: DATA_LIMITS.maxKeys,
      description: `any JSON object of at most ${DATA_LIMITS.maxBytes} bytes as JSON, nested at most ${DATA_LIMITS.maxDepth} levels deep, with at most ${DATA_LIMITS.maxKeys} keys at all levels together`
    },
    groupKey: { type: 'string', pattern: GROUP_KEY_PATTERN }
  }
} as const

export type Notification = FromSchema<typeof notificationSchema>
export type Actor = NonNullable<Notification['actor']>
/** What an app says in a notification, beyond who gets it, who caused it, and when. */
export type NotificationContent = Pick<Notification, 'type' | 'message' | 'title' | 'url' | 'data' | 'groupKey'>

/**
 * What the schema cannot say about `data`: its size as JSON, its depth and its keys at every
 * level. Undefined when it is within DATA_LIMITS; else the problem, to follow the field's name.
 */
export function dataProblem (data: Readonly<Record<string, unknown>>): string | undefined {
  const bytes = Buffer.byteLength(JSON.stringify(data))
  if (bytes > DATA_LIMITS.maxBytes) return `must be at most ${DATA_LIMITS.maxBytes} bytes as JSON (it has ${bytes})`
  let keys = 0
  // Depth first, bounded by the size checked above; `data` itself is level 1.
  const levels: Array<[unknown, number]> = [[data, 1]]
  for (let next = levels.pop(); next !== undefined; next = levels.pop()) {
    const [value, depth] = next
    if (typeof value !== 'object' || value === null) continue
    if (depth > DATA_LIMITS.maxDepth) return `must nest objects and arrays at most ${DATA_LIMITS.maxDepth} levels deep`
    const children = Array.isArray(value) ? value : Object.values(value)
    if (!Array.isArray(value)) keys += children.length
    if (keys > DATA_LIMITS.maxKeys) return `must have at most ${DATA_LIMITS.maxKeys} keys at all levels together`
    for (const child of children) levels.push([child, depth + 1])
  }
  return undefined
}

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

export function messageNotification (sender: User, recipient: User, message: string, id = uuidv7(), createdAt = new Date()): Notification {
  return {
    id,
    type: NotificationType.MESSAGE,
    userId: recipient.id,
    actor: { id: sender.id, name: sender.name },
    message,
    createdAt: createdAt.toISOString()
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

/**
 * RFC 9562 UUIDv8 from the SHA-256 of `name`: the same name gives the same id on every gateway
 * and every try, so a notification made again (a retried publish, a record read again) is the
 * same notification, which the inbox stores once.
 */
export function uuidv8 (name: string): string {
  const bytes = createHash('sha256').update(name).digest().subarray(0, 16)
  bytes[6] = (bytes[6]! & 0x0f) | 0x80
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
