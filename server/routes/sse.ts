import { decodeCursor } from '../feed/cursor.js'
import { EventStream } from '../hub/event-stream.js'
import { HubSocket } from '../hub/socket.js'
import { authenticate } from './authenticate.js'
import { feedQuerySchema } from './feed-sockets.js'
import { checkOrigin } from './origins.js'
import { cursorSchema, errorResponses, type RoutePlugin } from './schemas.js'

/**
 * What an event stream answers with: never cached, never buffered by a proxy (nginx reads
 * `X-Accel-Buffering`), never compressed (each event must leave at once). The connection ends with
 * the stream: a stream closed at shutdown leaves no idle keep-alive connection to wait for.
 */
const STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
  connection: 'close'
}

/**
 * GET /sse?ticket=…[&since=cursor] (or `?token=`, or an Authorization header): the live feed as
 * Server-Sent Events, for clients that cannot use WebSockets. The same checks, frames and limits
 * as /ws (ws.ts); each frame is one event (server/hub/event-stream.ts). `Last-Event-ID`, which
 * `EventSource` sends when it reconnects, resumes like `since` and wins over it. Errors before the
 * stream starts are plain JSON answers. See docs/protocol.md.
 */
const sseRoutes: RoutePlugin = async (app, { tokens, tickets, feedSockets, config }) => {
  app.route({
    method: 'GET',
    url: '/sse',
    // A HEAD would open a stream with no body to carry it.
    exposeHeadRoute: false,
    onRequest: [checkOrigin(config.allowedOrigins, '/sse'), authenticate(tokens, { tickets })],
    schema: {
      summary: 'The live feed as Server-Sent Events (the frames of /ws as events; docs/protocol.md)',
      description: 'Open with a ticket (POST /api/tickets), a bearer header, or `?token=`; `Last-Event-ID` (or `since`) resumes after a cursor.',
      querystring: feedQuerySchema,
      headers: { type: 'object', properties: { 'last-event-id': cursorSchema } },
      response: {
        200: {
          description: 'An event stream: `event: <frame type>`, `data: <the frame>`, `id: <cursor>`',
          content: { 'text/event-stream': { schema: { type: 'string' } } }
        },
        ...errorResponses
      }
    },
    handler: async (request, reply) => {
      const resumeFrom = request.headers['last-event-id'] ?? (request.query as { since?: string }).since
      // The stream is the gateway's from here: Fastify sends nothing more, so hooks' headers go with ours.
      reply.hijack()
      const response = reply.raw
      for (const [name, value] of Object.entries({ ...reply.getHeaders(), ...STREAM_HEADERS })) {
        if (value !== undefined) response.setHeader(name, value)
      }
      response.writeHead(200)
      const stream = new EventStream(response, resumeFrom)
      // The response corks its TCP socket: a batch's frames for a tab leave in one write.
      const socket = new HubSocket(request.principal.user.id, stream, config.ws.maxBufferedBytes, { transport: response })
      stream.onPong = () => socket.markAlive()
      response.on('error', (error) => app.log.debug({ err: error, userId: socket.userId }, 'Event stream error'))
      const closed = feedSockets.open(socket, request.principal, request.ip, resumeFrom === undefined ? undefined : decodeCursor(resumeFrom))
      response.once('close', closed)
    }
  })
}

export default sseRoutes
