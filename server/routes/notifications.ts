import { encodeCursor } from '../feed/cursor.js'
import type { GroupedItem, StoredNotification } from '../inbox/types.js'
import { authenticate } from './authenticate.js'
import { seqOf } from './feed-state.js'
import { bearerSecurity, cursorSchema, errorResponses, notificationSchema, type RoutePlugin } from './schemas.js'

const MAX_PAGE = 100

const actorRefSchema = notificationSchema.properties.actor.anyOf[0]

const historyItemProperties = {
  ...notificationSchema.properties,
  actor: { anyOf: [actorRefSchema, { type: 'null' }] },
  message: { type: 'string' },
  deleted: { type: 'boolean' },
  read: { type: 'boolean' },
  archived: { type: 'boolean' },
  groupId: { type: 'string' },
  cursor: { type: 'string' },
  seq: { type: 'integer' }
} as const

const historyItemSchema = {
  type: 'object',
  additionalProperties: false,
  required: [...notificationSchema.required, 'read', 'archived', 'groupId', 'cursor', 'seq'],
  properties: historyItemProperties
} as const

/** A grouped history item: the group's newest notification, with the group's size, actors and unread members. */
const groupedItemSchema = {
  type: 'object',
  additionalProperties: false,
  required: [...historyItemSchema.required, 'count', 'actorCount', 'actors', 'unread'],
  properties: {
    ...historyItemProperties,
    count: { type: 'integer' },
    actorCount: { type: 'integer' },
    actors: { type: 'array', items: actorRefSchema },
    unread: { type: 'integer' }
  }
} as const

/** The caller's own history. A token only ever reaches its own user's rows. */
const notificationsRoutes: RoutePlugin = async (app, { tokens, inbox }) => {
  const signedIn = authenticate(tokens)

  app.get('/api/notifications', {
    onRequest: signedIn,
    schema: {
      summary: 'The caller\'s own history (the inbox, or the archive), newest first, one item a notification or a group, with the counts',
      security: bearerSecurity,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 50 },
          before: cursorSchema,
          archived: { type: 'boolean', default: false },
          grouped: { type: 'boolean', default: false }
        }
      },
      response: {
        200: {
          description: 'A page of history; `nextCursor` (or null at the end) is the next page\'s `before`',
          type: 'object',
          required: ['items', 'nextCursor', 'unread', 'unseen', 'rev'],
          properties: {
            items: { type: 'array', items: { anyOf: [groupedItemSchema, historyItemSchema] } },
            nextCursor: { type: ['string', 'null'] },
            unread: { type: 'integer' },
            unseen: { type: 'integer' },
            rev: { type: 'integer' }
          }
        },
        ...errorResponses
      }
    }
  }, async (request) => {
    const userId = request.principal.user.id
    const { limit, before, archived, grouped } = request.query
    const beforeSeq = before === undefined ? undefined : seqOf(before, inbox, 'querystring/before')
    const { epoch } = inbox
    const feed = await inbox.snapshot(userId)
    const counts = { unread: feed.unread, unseen: feed.unseen, rev: feed.rev }
    if (grouped) {
      const page = await inbox.grouped(userId, limit, beforeSeq, { archived })
      return { items: page.items.map((item) => groupedHistoryItem(item, epoch)), nextCursor: page.nextBefore === null ? null : encodeCursor(epoch, page.nextBefore), ...counts }
    }
    const page = await inbox.history(userId, limit, beforeSeq, { archived })
    return { items: page.items.map((stored) => historyItem(stored, epoch)), nextCursor: page.nextBefore === null ? null : encodeCursor(epoch, page.nextBefore), ...counts }
  })
}

type HistoryItem = StoredNotification['notification'] & { read: boolean, archived: boolean, groupId: string, cursor: string, seq: number }

function historyItem ({ seq, notification, read, archived, groupId }: StoredNotification, epoch: string): HistoryItem {
  return { ...notification, read, archived, groupId, cursor: encodeCursor(epoch, seq), seq }
}

function groupedHistoryItem ({ newest, count, actorCount, actors, unread }: GroupedItem, epoch: string): HistoryItem & Omit<GroupedItem, 'newest'> {
  return { ...historyItem(newest, epoch), count, actorCount, actors, unread }
}

export default notificationsRoutes
