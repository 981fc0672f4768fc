import { TICKET_PATTERN } from '../auth/tickets.js'
import { authenticate } from './authenticate.js'
import { type RoutePlugin, bearerSecurity, errorResponses } from './schemas.js'

/**
 * POST /api/tickets: a one-time ticket for the caller's token, to open a streaming endpoint
 * (`/ws?ticket=…`, `/sse?ticket=…`) without putting the token in the URL. See docs/protocol.md.
 */
const ticketsRoutes: RoutePlugin = async (app, { tokens, tickets, limits }) => {
  app.post('/api/tickets', {
    onRequest: [limits.perIp, authenticate(tokens), limits.perUser],
    schema: {
      summary: 'A one-time ticket to open /ws without the token in the URL (30 s, single use)',
      security: bearerSecurity,
      response: {
        201: {
          description: 'Use it once as `/ws?ticket=…` before `expiresAt`',
          type: 'object',
          required: ['ticket', 'expiresAt'],
          properties: { ticket: { type: 'string', pattern: TICKET_PATTERN }, expiresAt: { type: 'string' } }
        },
        ...errorResponses
      }
    }
  }, async (request, reply) => reply.code(201).send(await tickets.issue(request.principal)))
}

export default ticketsRoutes
