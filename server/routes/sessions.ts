import { ErrorCode, RequestError } from '../errors.js'
import { type RoutePlugin, errorResponses, userIdSchema, userRefSchema } from './schemas.js'

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6. */
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/

/**
 * POST /api/sessions: dev sign-in as any directory user, or a service token for a backend on this
 * machine (`service`: its name), so that `POST /api/notifications` can be tried without an
 * identity service. Registered only in AUTH_MODE=dev.
 */
const sessionsRoutes: RoutePlugin = async (app, { directory, tokens, limits }) => {
  app.post('/api/sessions', {
    onRequest: limits.perIp,
    schema: {
      summary: 'Dev sign-in: a token for a directory user, or a service token for a backend on this machine',
      body: {
        // One of the two, said in the handler: a schema's oneOf or maxProperties would hide which field is wrong.
        type: 'object',
        additionalProperties: false,
        description: 'exactly one of `userId` and `service`',
        properties: { userId: userIdSchema, service: userIdSchema }
      },
      response: {
        201: {
          description: 'Signed in: a bearer token until `expiresAt`',
          type: 'object',
          required: ['token', 'user', 'expiresAt'],
          properties: { token: { type: 'string' }, user: userRefSchema, expiresAt: { type: 'string' } }
        },
        ...errorResponses
      }
    }
  }, async (request, reply) => {
    const { userId, service } = request.body
    if (userId !== undefined && service !== undefined) throw new RequestError(ErrorCode.INVALID_BODY, 'body must have either userId or service, not both')
    if (service !== undefined) {
      // Dev mode lets anyone be anyone, but publishing to every id is a backend's power: only a
      // caller on this machine gets it (the client address, behind TRUST_PROXY's proxies).
      if (!LOOPBACK.test(request.ip)) throw new RequestError(ErrorCode.FORBIDDEN, 'body/service: service tokens are signed only for callers on the gateway\'s own machine (loopback) in dev mode; use AUTH_MODE=jwt')
      const user = { id: service, name: service }
      const { token, expiresAt } = await tokens.sign(user, { service: true })
      return reply.code(201).send({ token, user, expiresAt })
    }
    if (userId === undefined) throw new RequestError(ErrorCode.INVALID_BODY, 'body must have required property \'userId\' (or \'service\')')
    const user = directory.get(userId)
    if (user === undefined) throw new RequestError(ErrorCode.UNKNOWN_USER, `body/userId ${JSON.stringify(userId)} is not a known user`)
    const { token, expiresAt } = await tokens.sign(user)
    return reply.code(201).send({ token, user, expiresAt })
  })
}

export default sessionsRoutes
