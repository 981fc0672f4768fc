import '@fastify/websocket'
import { decodeCursor, notificationFrame, readyFrame, syncedFrame } from '../frames.js'
import { CloseCode } from '../hub/close-codes.js'
import { Connection } from '../hub/connection.js'
import type { Inbox } from '../inbox/types.js'
import { authenticate } from './authenticate.js'
import { cursorSchema, type RoutePlugin } from './schemas.js'

const CATCH_UP_PAGE = 500
/** setTimeout's ceiling; a token living longer than ~24 days is re-checked at that point. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * GET /ws?token=…[&since=cursor]: the live feed. The token is checked before the upgrade, so a
 * bad one gets a plain 401. Frames: `ready`, then (with `since`) the missed notifications and
 * `synced`, then live `notification` and `unread` frames. See docs/protocol.md.
 */
const wsRoutes: RoutePlugin = async (app, { tokens, hub, inbox, config }) => {
  app.get('/ws', {
    websocket: true,
    onRequest: authenticate(tokens, { queryToken: true }),
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { token: { type: 'string', maxLength: 4096 }, since: cursorSchema }
      }
    }
  }, (socket, request) => {
    const { user, expiresAt } = request.principal
    const connection = new Connection(user.id, socket, config.ws.maxBufferedBytes)
    const { since } = request.query as { since?: string }
    // Live frames wait until `ready` (and the catch-up) went out, so the order on the wire holds.
    connection.hold()
    hub.add(connection)

    const expiry = expiresAt === undefined
      ? undefined
      : setTimeout(() => connection.close(CloseCode.TOKEN_EXPIRED, 'token expired'), Math.min(MAX_TIMER_MS, expiresAt * 1000 - Date.now()))
    socket.on('pong', () => connection.markAlive())
    socket.on('message', () => connection.close(CloseCode.PROTOCOL_VIOLATION, 'clients must not send messages'))
    socket.on('error', (error) => request.log.debug({ err: error }, 'WebSocket error'))
    socket.on('close', () => {
      clearTimeout(expiry)
      hub.remove(connection)
    })

    start(connection, inbox, user, since === undefined ? undefined : decodeCursor(since)).catch((error: unknown) => {
      request.log.error({ err: error }, 'WebSocket start failed')
      connection.close(CloseCode.INTERNAL_ERROR, 'internal error')
    })
  })
}

async function start (connection: Connection, inbox: Inbox, user: { id: string, name: string }, since: number | undefined): Promise<void> {
  connection.sendNow(readyFrame(user, await inbox.unread(user.id)))
  if (since === undefined) {
    connection.release(0)
    return
  }
  const check = await inbox.checkCursor(user.id, since)
  if (!check.ok) {
    const newest = (await inbox.history(user.id, 1)).items[0]?.seq ?? 0
    connection.sendNow(syncedFrame(newest, true))
    connection.release(newest)
    return
  }
  let cursor = since
  for (;;) {
    const page = await inbox.after(user.id, cursor, CATCH_UP_PAGE)
    const last = page.at(-1)
    if (last === undefined) break
    for (const { seq, notification } of page.slice(0, -1)) {
      if (!connection.sendNow(notificationFrame(notification, seq))) return
    }
    // Waiting for each page to reach the wire keeps a long replay within the send bound.
    if (!await connection.sendWritten(notificationFrame(last.notification, last.seq))) return
    cursor = last.seq
    if (page.length < CATCH_UP_PAGE) break
  }
  connection.sendNow(syncedFrame(cursor, false))
  connection.release(cursor)
}

export default wsRoutes
