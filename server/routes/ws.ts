import '@fastify/websocket'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ErrorCode, RequestError } from '../errors.js'
import { decodeCursor } from '../feed/cursor.js'
import { CloseCode } from '../hub/close-codes.js'
import { HubSocket } from '../hub/socket.js'
import { authenticate } from './authenticate.js'
import { checkOrigin } from './origins.js'
import { feedQuerySchema } from './feed-sockets.js'
import { errorResponses, type RoutePlugin } from './schemas.js'

/**
 * GET /ws?ticket=…[&since=cursor] (or `?token=`, or an Authorization header): the live feed. The
 * ticket or token is checked before the upgrade, so a bad one gets a plain 401. Frames: `ready`, then (with `since`) the missed notifications and
 * `synced`, then live `notification` and `unread` frames. See docs/protocol.md.
 */
const wsRoutes: RoutePlugin = async (app, { tokens, tickets, feedSockets, config }) => {
  /**
   * The response @fastify/websocket makes for each upgrade, by its request: it assigns it to the TCP
   * socket and never detaches it, so each idle socket would hold it, and through it the upgrade's
   * request, Fastify's request and reply and their logger (kilobytes per socket). Kept until the
   * upgrade is done, when it is detached.
   */
  const upgradeResponses = new WeakMap<IncomingMessage, ServerResponse>()
  app.route({
    method: 'GET',
    url: '/ws',
    onRequest: [checkOrigin(config.allowedOrigins, '/ws'), authenticate(tokens, { tickets })],
    schema: {
      summary: 'The live feed: a WebSocket (frames, catch-up and close codes in docs/protocol.md)',
      description: 'Open with the token as a subprotocol (`kafka-notify, bearer.<token>`), a ticket (POST /api/tickets), a bearer header, or `?token=`; `since` resumes after a cursor.',
      querystring: feedQuerySchema,
      response: {
        101: { description: 'Switched to the WebSocket protocol: frames follow', type: 'null' },
        ...errorResponses
      }
    },
    preHandler: (request, reply, done) => {
      upgradeResponses.set(request.raw, reply.raw)
      done()
    },
    handler: async () => {
      throw new RequestError(ErrorCode.UPGRADE_REQUIRED, '/ws is a WebSocket endpoint: send an upgrade request')
    },
    wsHandler: (webSocket, request) => {
      // Closures below outlive the request: they take only these, not the request itself (it is
      // large, and 19k idle sockets would keep 19k of them).
      const userId = request.principal.user.id
      // The upgrade's TCP socket, which ws writes to: corking it lets a batch's frames for a tab leave in one write.
      const socket = new HubSocket(userId, webSocket, config.ws.maxBufferedBytes, { transport: request.raw.socket })
      const upgrade = upgradeResponses.get(request.raw)
      if (upgrade?.socket != null) upgrade.detachSocket(upgrade.socket)
      const { since } = request.query as { since?: string }
      webSocket.on('pong', () => socket.markAlive())
      webSocket.on('message', () => socket.close(CloseCode.PROTOCOL_VIOLATION, 'clients must not send messages'))
      // @fastify/websocket's own error listener holds the upgrade's request and reply for the
      // socket's whole life (kilobytes per idle socket); errors need only this log line, and
      // ws closes the socket after one anyway.
      webSocket.removeAllListeners('error')
      webSocket.on('error', (error) => app.log.debug({ err: error, userId }, 'WebSocket error'))
      const closed = feedSockets.open(socket, request.principal, request.ip, since === undefined ? undefined : decodeCursor(since))
      webSocket.on('close', closed)
    }
  })
}

export default wsRoutes
