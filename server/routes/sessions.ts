import { ErrorCode, RequestError } from '../errors.js'
import { type RoutePlugin, errorSchema, userIdSchema, userRefSchema } from './schemas.js'

/** POST /api/sessions: dev sign-in as any directory user. Registered only in AUTH_MODE=dev. */
const sessionsRoutes: RoutePlugin = async (app, { directory, tokens, limits }) => {
  app.post('/api/sessions', {
    onRequest: limits.perIp,
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['userId'],
        properties: { userId: userIdSchema }
      },
      response: {
        201: {
          type: 'object',
          required: ['token', 'user', 'expiresAt'],
          properties: { token: { type: 'string' }, user: userRefSchema, expiresAt: { type: 'string' } }
        },
        '4xx': errorSchema
      }
    }
  }, async (request, reply) => {
    const user = directory.get(request.body.userId)
    if (user === undefined) throw new RequestError(ErrorCode.UNKNOWN_USER, `body/userId ${JSON.stringify(request.body.userId)} is not a known user`)
    const { token, expiresAt } = await tokens.sign(user)
    return reply.code(201).send({ token, user, expiresAt })
  })
}

export default sessionsRoutes
