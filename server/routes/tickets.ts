import { TICKET_PATTERN } from '../auth/tickets.js'
import { authenticate } from './authenticate.js'
import { type RoutePlugin, bearerSecurity, errorSchema } from './schemas.js'

/**
 * POST /api/tickets: a one-time ticket for the caller's token, to open a streaming endpoint
 * (`/ws?ticket=…`) without putting the token in the URL. See docs/protocol.md.
 */
const ticketsRoutes: RoutePlugin = async (app, { tokens, tickets, limits }) => {
  app.post('/api/tickets', {
    onRequest: [limits.perIp, authenticate(tokens), limits.perUser],
    schema: {
      security: bearerSecurity,
      response: {
        201: {
          type: 'object',
          required: ['ticket', 'expiresAt'],
          properties: { ticket: { type: 'string', pattern: TICKET_PATTERN }, expiresAt: { type: 'string' } }
        },
        '4xx': errorSchema,
        '5xx': errorSchema
      }
    }
  }, async (request, reply) => reply.code(201).send(await tickets.issue(request.principal)))
}

export default ticketsRoutes
