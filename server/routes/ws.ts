import '@fastify/websocket'
import { ErrorCode, RequestError } from '../errors.js'
import { decodeCursor } from '../feed/cursor.js'
import { CloseCode } from '../hub/close-codes.js'
import { HubSocket } from '../hub/socket.js'
import { TICKET_PATTERN } from '../auth/tickets.js'
import { authenticate } from './authenticate.js'
import { addressKey } from './client-address.js'
import { checkOrigin } from './origins.js'
import { cursorSchema, errorResponses, type RoutePlugin } from './schemas.js'

/** setTimeout's ceiling; a token living longer than ~24 days is re-armed at that point. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * GET /ws?ticket=…[&since=cursor] (or `?token=`, or an Authorization header): the live feed. The
 * ticket or token is checked before the upgrade, so a bad one gets a plain 401. Frames: `ready`, then (with `since`) the missed notifications and
 * `synced`, then live `notification` and `unread` frames. See docs/protocol.md.
 */
const wsRoutes: RoutePlugin = async (app, { tokens, tickets, hub, relay, config, clock }) => {
  const perIp = new Map<string, number>()
  const { maxConnectionsPerUser, maxConnectionsPerIp } = config.ws

  app.route({
    method: 'GET',
    url: '/ws',
    onRequest: [checkOrigin(config.allowedOrigins, '/ws'), authenticate(tokens, { tickets })],
    schema: {
      summary: 'The live feed: a WebSocket (frames, catch-up and close codes in docs/protocol.md)',
      description: 'Open with a ticket (POST /api/tickets), a bearer header, or `?token=`; `since` resumes after a cursor.',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { ticket: { type: 'string', pattern: TICKET_PATTERN }, token: { type: 'string', maxLength: 4096 }, since: cursorSchema }
      },
      response: {
        101: { description: 'Switched to the WebSocket protocol: frames follow', type: 'null' },
        ...errorResponses
      }
    },
    handler: async () => {
      throw new RequestError(ErrorCode.UPGRADE_REQUIRED, '/ws is a WebSocket endpoint: send an upgrade request')
    },
    wsHandler: (webSocket, request) => {
      // Closures below outlive the request: they take only these, not the request itself (it is
      // large, and 19k idle sockets would keep 19k of them).
      const { user, expiresAt } = request.principal
      const ip = addressKey(request.ip)
      const fromIp = perIp.get(ip) ?? 0
      if (maxConnectionsPerUser > 0 && hub.connectionsOf(user.id) >= maxConnectionsPerUser) {
        webSocket.close(CloseCode.TOO_MANY_CONNECTIONS, `too many connections for this user (at most ${maxConnectionsPerUser})`)
        return
      }
      if (maxConnectionsPerIp > 0 && fromIp >= maxConnectionsPerIp) {
        webSocket.close(CloseCode.TOO_MANY_CONNECTIONS, `too many connections from this address (at most ${maxConnectionsPerIp})`)
        return
      }
      perIp.set(ip, fromIp + 1)
      // The upgrade's TCP socket, which ws writes to: corking it lets a batch's frames for a tab leave in one write.
      const socket = new HubSocket(user.id, webSocket, config.ws.maxBufferedBytes, { transport: request.raw.socket })
      const { since } = request.query as { since?: string }
      hub.add(socket)

      let cancelExpiry: (() => void) | undefined
      const closeAtExpiry = (): void => {
        if (expiresAt === undefined) return
        const left = expiresAt * 1000 - clock.now()
        if (left <= 0) socket.close(CloseCode.TOKEN_EXPIRED, 'token expired')
        else cancelExpiry = clock.schedule(closeAtExpiry, Math.min(MAX_TIMER_MS, left))
      }
      closeAtExpiry()
      webSocket.on('pong', () => socket.markAlive())
      webSocket.on('message', () => socket.close(CloseCode.PROTOCOL_VIOLATION, 'clients must not send messages'))
      // @fastify/websocket's own error listener holds the upgrade's request and reply for the
      // socket's whole life (kilobytes per idle socket); errors need only this log line, and
      // ws closes the socket after one anyway.
      webSocket.removeAllListeners('error')
      webSocket.on('error', (error) => app.log.debug({ err: error, userId: user.id }, 'WebSocket error'))
      webSocket.on('close', () => {
        cancelExpiry?.()
        relay.close(socket)
        hub.remove(socket)
        const left = (perIp.get(ip) ?? 1) - 1
        if (left === 0) perIp.delete(ip)
        else perIp.set(ip, left)
      })

      if (!socket.open) return // refused by the hub (the gateway is shutting down), or the token expired
      void relay.open(socket, user, since === undefined ? undefined : decodeCursor(since))
    }
  })
}

export default wsRoutes
