import { createHash } from 'node:crypto'
import type { FromSchema } from 'json-schema-to-ts'
import { USER_ID_PATTERN, userRefSchema } from './directory.js'
import { actorSchema, notificationSchema, uuidv7, uuidv8, type Actor, type Notification } from './notification.js'

export const MAX_RECIPIENTS = 1000

/**
 * What a backend publishes (`POST /api/notifications`): one notification's content for up to
 * 1,000 recipients. The actor's name may be left out: the directory's, else the id, stands in.
 */
export const publicationSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['recipients', 'type', 'message'],
  properties: {
    recipients: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_RECIPIENTS,
      uniqueItems: true,
      items: { type: 'string', pattern: USER_ID_PATTERN }
    },
    type: notificationSchema.properties.type,
    message: notificationSchema.properties.message,
    title: notificationSchema.properties.title,
    url: notificationSchema.properties.url,
    data: notificationSchema.properties.data,
    actor: {
      type: 'object',
      additionalProperties: false,
      required: ['id'],
      properties: { ...actorSchema.properties, name: userRefSchema.properties.name }
    },
    groupKey: notificationSchema.properties.groupKey
  }
} as const

export type Publication = FromSchema<typeof publicationSchema>

/** What makes a publication's notifications the same on every try of one request. */
export interface PublicationIdentity {
  /** The publishing service (its token's `sub`). */
  service: string
  /** The request's `Idempotency-Key`; without one each try makes new ids. */
  key: string | undefined
  /** `fingerprintOf` the publication. */
  fingerprint: string
  createdAt: string
}

/**
 * The publication's fingerprint: the same for the same request, whatever the order of its keys or
 * recipients; never a follow's (a followee id), so one key cannot pass for both routes' requests.
 */
export function fingerprintOf (publication: Publication): string {
  const canonical = canonicalJson({ ...publication, recipients: [...publication.recipients].sort() })
  return `publication:${createHash('sha256').update(canonical).digest('base64url')}`
}

/**
 * One notification per recipient, in the order given. With an Idempotency-Key each id is derived
 * from (service, key, fingerprint, recipient): a retry of the request makes the very same
 * notifications, so one that failed half-way and is retried stores each once, and a key reused
 * later for another request makes other ids.
 */
export function notificationsOf (publication: Publication, identity: PublicationIdentity, nameOf: (id: string) => string | undefined): Notification[] {
  const { recipients, actor, type, message, ...optional } = publication
  const from: Actor | null = actor === undefined ? null : { ...actor, name: actor.name ?? nameOf(actor.id) ?? actor.id }
  const { service, key, fingerprint, createdAt } = identity
  const now = Date.parse(createdAt)
  return recipients.map((userId) => ({
    id: key === undefined ? uuidv7(now) : uuidv8(`publication\u0000${service}\u0000${key}\u0000${fingerprint}\u0000${userId}`),
    type,
    userId,
    actor: from,
    message,
    createdAt,
    ...optional
  }))
}

/** JSON with every object's keys sorted, so equal values always read the same. */
function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`
  }
  return JSON.stringify(value)
}
