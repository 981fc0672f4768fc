import { ErrorCode, RequestError } from '../errors.js'
import { decodeCursor, encodeCursor } from '../feed/cursor.js'
import { stateFrame, unreadFrame } from '../feed/frames.js'
import type { Inbox, StateRequest, StateResult } from '../inbox/types.js'
import type { StateOp } from '../state-change.js'
import { authenticate } from './authenticate.js'
import { bearerSecurity, cursorSchema, errorResponses, notificationSchema, type AppContext, type RoutePlugin } from './schemas.js'

/** 100 ids fit well within the 16 KiB body limit, and match the largest history page. */
export const MAX_SELECTED = 100

const idsSchema = { type: 'array', minItems: 1, maxItems: MAX_SELECTED, items: notificationSchema.properties.id } as const

/**
 * The body of a state change: exactly one of `ids`, `groups` (group ids, as grouped history and
 * `group` in frames give them) and, where the change takes it, `upTo` (a cursor: every
 * notification at or before it). One object, not oneOf: a validation message then names the
 * field that is wrong.
 */
function selectionBody (withUpTo: boolean): object {
  return {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
    properties: withUpTo ? { upTo: cursorSchema, ids: idsSchema, groups: idsSchema } : { ids: idsSchema, groups: idsSchema }
  }
}

const stateAnswer = {
  200: {
    description: 'Done (or nothing to do: no rev taken): the counts after it, and the feed\'s state revision',
    type: 'object',
    required: ['unread', 'unseen', 'rev'],
    properties: { unread: { type: 'integer' }, unseen: { type: 'integer' }, rev: { type: 'integer' } }
  },
  ...errorResponses
} as const

const idParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: notificationSchema.properties.id }
} as const

interface Selected { upTo?: string, ids?: string[], groups?: string[] }

/**
 * The caller's own feed state: read, unread, seen, archive, unarchive, delete, by id, by group or
 * up to a cursor. Each change is one transaction with one rev; every tab of the user, on every
 * gateway, gets it as a `state` frame (and an `unread` frame, for clients that know no `state`).
 */
const feedStateRoutes: RoutePlugin = async (app, context) => {
  const { tokens, inbox, limits } = context
  const signedIn = authenticate(tokens)
  const onRequest = [limits.perIp, signedIn, limits.perUser]

  const changes: Array<{ op: Exclude<StateOp, 'seen' | 'delete'>, summary: string, withUpTo: boolean }> = [
    { op: 'read', summary: 'Mark the caller\'s notifications read: all up to a cursor, some by id, or whole groups', withUpTo: true },
    { op: 'unread', summary: 'Mark the caller\'s notifications unread, by id or whole groups', withUpTo: false },
    { op: 'archive', summary: 'Archive the caller\'s notifications: all up to a cursor ("clear all"), some by id, or whole groups', withUpTo: true },
    { op: 'unarchive', summary: 'Bring archived notifications back to the inbox, by id or whole groups', withUpTo: false }
  ]
  for (const { op, summary, withUpTo } of changes) {
    app.post(`/api/notifications/${op}`, {
      onRequest,
      schema: { summary, security: bearerSecurity, body: selectionBody(withUpTo), response: stateAnswer }
    }, async (request) => {
      const body = request.body as Selected
      return await change(context, request.principal.user.id, { op, ...selection(body, inbox) })
    })
  }

  app.post('/api/notifications/seen', {
    onRequest,
    schema: {
      summary: 'Mark the caller\'s feed seen up to a cursor: the unseen count (the bell) drops, read marks stay',
      security: bearerSecurity,
      body: { type: 'object', additionalProperties: false, required: ['upTo'], properties: { upTo: cursorSchema } },
      response: stateAnswer
    }
  }, async (request) => {
    return await change(context, request.principal.user.id, { op: 'seen', upToSeq: seqOf(request.body.upTo, inbox, 'body/upTo') })
  })

  const deletes = [
    { path: '/api/notifications/:id', summary: 'Delete one of the caller\'s notifications: its content is gone, its seq stays taken (a tombstone)', selection: (id: string) => ({ ids: [id] }) },
    { path: '/api/notifications/groups/:id', summary: 'Delete every notification of one of the caller\'s groups, in one change', selection: (id: string) => ({ groups: [id] }) }
  ]
  for (const { path, summary, selection } of deletes) {
    app.delete(path, {
      onRequest,
      schema: { summary, security: bearerSecurity, params: idParams, response: stateAnswer }
    }, async (request) => {
      return await change(context, request.principal.user.id, { op: 'delete', ...selection(request.params.id) })
    })
  }
}

/** Makes the change, tells every tab of the user, and answers the counts. */
async function change ({ inbox, tail }: AppContext, userId: string, request: StateRequest): Promise<{ unread: number, unseen: number, rev: number }> {
  const result = await inbox.changeState(userId, request)
  publishChange(tail, inbox.epoch, userId, result)
  const { unread, unseen, rev } = result.feed
  return { unread, unseen, rev }
}

/** Not awaited: the change is stored already, and a tab that misses the frame catches up from the state log. */
function publishChange (tail: AppContext['tail'], epoch: string, userId: string, { change }: StateResult): void {
  if (change === undefined) return
  const { rev, seq, changes, unread, unseen } = change
  tail.publish([
    { userId, text: stateFrame({ rev, seq, changes, unread, unseen, cursor: encodeCursor(epoch, seq, rev) }), seq, rev, state: true },
    { userId, text: unreadFrame(unread, rev) }
  ])
}

function selection ({ upTo, ids, groups }: Selected, inbox: Inbox): { upToSeq: number } | { ids: string[] } | { groups: string[] } {
  if (upTo !== undefined) return { upToSeq: seqOf(upTo, inbox, 'body/upTo') }
  if (ids !== undefined) return { ids }
  if (groups !== undefined) return { groups }
  throw new RequestError(ErrorCode.INVALID_BODY, 'body must have upTo, ids or groups')
}

/** A cursor's seq in this inbox ("0": the beginning); one from another epoch names a position this inbox never had. */
export function seqOf (cursor: string, inbox: Inbox, field: string): number {
  const { epoch, seq } = decodeCursor(cursor)
  if (epoch !== inbox.epoch && !(epoch === undefined && seq === 0)) {
    throw new RequestError(ErrorCode.STALE_CURSOR, `${field} is a cursor from another inbox epoch (the store was reset or restored): reload history without it`)
  }
  return seq
}

export default feedStateRoutes
