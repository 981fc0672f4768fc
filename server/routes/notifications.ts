import { ApiError, ErrorCode } from '../errors.js'
import { decodeCursor, encodeCursor, unreadFrame } from '../frames.js'
import type { StoredNotification } from '../inbox/types.js'
import { authenticate } from './authenticate.js'
import { bearerSecurity, cursorSchema, errorSchema, notificationSchema, type RoutePlugin } from './schemas.js'

const MAX_PAGE = 100
/** 100 ids fit well within the 16 KiB body limit, and match the largest history page. */
const MAX_READ_IDS = 100

const historyItemSchema = {
  type: 'object',
  additionalProperties: false,
  required: [...notificationSchema.required, 'read', 'cursor'],
  properties: { ...notificationSchema.properties, read: { type: 'boolean' }, cursor: { type: 'string' } }
} as const

/** The caller's own history and read state. A token only ever reaches its own user's rows. */
const notificationsRoutes: RoutePlugin = async (app, { tokens, inbox, hub, limits }) => {
  const signedIn = authenticate(tokens)

  app.get('/api/notifications', {
    onRequest: signedIn,
    schema: {
      security: bearerSecurity,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 50 },
          before: cursorSchema
        }
      },
      response: {
        200: {
          type: 'object',
          required: ['items', 'nextCursor', 'unread'],
          properties: {
            items: { type: 'array', items: historyItemSchema },
            nextCursor: { type: ['string', 'null'] },
            unread: { type: 'integer' }
          }
        },
        '4xx': errorSchema
      }
    }
  }, async (request) => {
    const userId = request.principal.user.id
    const { limit, before } = request.query
    const page = await inbox.history(userId, limit, before === undefined ? undefined : decodeCursor(before))
    return {
      items: page.items.map(historyItem),
      nextCursor: page.nextBefore === null ? null : encodeCursor(page.nextBefore),
      unread: await inbox.unread(userId)
    }
  })

  app.post('/api/notifications/read', {
    onRequest: [limits.perIp, signedIn, limits.perUser],
    schema: {
      security: bearerSecurity,
      body: {
        // One object, not oneOf: a validation message then names the field that is wrong.
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        maxProperties: 1,
        properties: {
          upTo: cursorSchema,
          ids: { type: 'array', minItems: 1, maxItems: MAX_READ_IDS, items: notificationSchema.properties.id }
        }
      },
      response: {
        200: { type: 'object', required: ['unread'], properties: { unread: { type: 'integer' } } },
        '4xx': errorSchema
      }
    }
  }, async (request) => {
    const userId = request.principal.user.id
    const { upTo, ids } = request.body
    const selection = upTo !== undefined ? { upTo: decodeCursor(upTo) } : ids !== undefined ? { ids } : undefined
    if (selection === undefined) throw new ApiError(400, ErrorCode.INVALID_BODY, 'body must have upTo or ids')
    const unread = await inbox.markRead(userId, selection)
    hub.send(userId, { text: unreadFrame(unread) })
    return { unread }
  })
}

function historyItem ({ seq, notification, read }: StoredNotification): StoredNotification['notification'] & { read: boolean, cursor: string } {
  return { ...notification, read, cursor: encodeCursor(seq) }
}

export default notificationsRoutes
