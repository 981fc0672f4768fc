import { ErrorCode, RequestError } from '../errors.js'
import { decodeCursor, encodeCursor } from '../feed/cursor.js'
import { unreadFrame } from '../feed/frames.js'
import type { Inbox, StoredNotification } from '../inbox/types.js'
import { authenticate } from './authenticate.js'
import { bearerSecurity, cursorSchema, errorResponses, notificationSchema, type RoutePlugin } from './schemas.js'

const MAX_PAGE = 100
/** 100 ids fit well within the 16 KiB body limit, and match the largest history page. */
const MAX_READ_IDS = 100

const historyItemSchema = {
  type: 'object',
  additionalProperties: false,
  required: [...notificationSchema.required, 'read', 'cursor', 'seq'],
  properties: { ...notificationSchema.properties, read: { type: 'boolean' }, cursor: { type: 'string' }, seq: { type: 'integer' } }
} as const

/** The caller's own history and read state. A token only ever reaches its own user's rows. */
const notificationsRoutes: RoutePlugin = async (app, { tokens, inbox, tail, limits }) => {
  const signedIn = authenticate(tokens)

  app.get('/api/notifications', {
    onRequest: signedIn,
    schema: {
      summary: 'The caller\'s own history, newest first, with the unread count',
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
          description: 'A page of history; `nextCursor` (or null at the end) is the next page\'s `before`',
          type: 'object',
          required: ['items', 'nextCursor', 'unread'],
          properties: {
            items: { type: 'array', items: historyItemSchema },
            nextCursor: { type: ['string', 'null'] },
            unread: { type: 'integer' }
          }
        },
        ...errorResponses
      }
    }
  }, async (request) => {
    const userId = request.principal.user.id
    const { limit, before } = request.query
    const page = await inbox.history(userId, limit, before === undefined ? undefined : seqOf(before, inbox, 'querystring/before'))
    return {
      items: page.items.map((stored) => historyItem(stored, inbox.epoch)),
      nextCursor: page.nextBefore === null ? null : encodeCursor(inbox.epoch, page.nextBefore),
      unread: await inbox.unread(userId)
    }
  })

  app.post('/api/notifications/read', {
    onRequest: [limits.perIp, signedIn, limits.perUser],
    schema: {
      summary: 'Mark the caller\'s notifications read: all up to a cursor, or some by id',
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
        200: { description: 'Marked: the unread count after it, and the read state\'s revision', type: 'object', required: ['unread', 'rev'], properties: { unread: { type: 'integer' }, rev: { type: 'integer' } } },
        ...errorResponses
      }
    }
  }, async (request) => {
    const userId = request.principal.user.id
    const { upTo, ids } = request.body
    const selection = upTo !== undefined ? { upTo: seqOf(upTo, inbox, 'body/upTo') } : ids !== undefined ? { ids } : undefined
    if (selection === undefined) throw new RequestError(ErrorCode.INVALID_BODY, 'body must have upTo or ids')
    const { unread, rev } = await inbox.markRead(userId, selection)
    // Every tab of the user, on every gateway, hears of it. Not awaited: the count is stored already.
    tail.publish([{ userId, text: unreadFrame(unread, rev) }])
    return { unread, rev }
  })
}

function historyItem ({ seq, notification, read }: StoredNotification, epoch: string): StoredNotification['notification'] & { read: boolean, cursor: string, seq: number } {
  return { ...notification, read, cursor: encodeCursor(epoch, seq), seq }
}

/** A cursor's seq in this inbox ("0": the beginning); one from another epoch names a position this inbox never had. */
function seqOf (cursor: string, inbox: Inbox, field: string): number {
  const { epoch, seq } = decodeCursor(cursor)
  if (epoch !== inbox.epoch && !(epoch === undefined && seq === 0)) {
    throw new RequestError(ErrorCode.STALE_CURSOR, `${field} is a cursor from another inbox epoch (the store was reset or restored): reload history without it`)
  }
  return seq
}

export default notificationsRoutes
