import { randomUUID } from 'node:crypto'
import type { FromSchema } from 'json-schema-to-ts'
import { USER_ID_PATTERN, userRefSchema, type User } from './directory.js'

/** The kinds of notification. `message` carries free text (the Go tutorial's `POST /send`). */
export const NotificationType = { FOLLOW: 'follow', MESSAGE: 'message' } as const
export type NotificationType = typeof NotificationType[keyof typeof NotificationType]

export const MAX_MESSAGE_LENGTH = 1000

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
    createdAt: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?Z$' }
  }
} as const

export type Notification = FromSchema<typeof notificationSchema>

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
