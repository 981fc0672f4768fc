import { ApiError, ErrorCode, toHttpError } from '../errors.js'
import { followNotification } from '../notification.js'
import { authenticate } from './authenticate.js'
import { type RoutePlugin, bearerSecurity, errorSchema, notificationSchema, userIdSchema } from './schemas.js'

/**
 * POST /api/follows: the token's user follows `followeeId`. Answers 202 only once Kafka has
 * acknowledged the record (acks=-1), so an accepted follow is never lost.
 */
const followsRoutes: RoutePlugin = async (app, { directory, tokens, bus, metrics }) => {
  app.addHook('onError', async (_request, _reply, error) => {
    metrics.follows.inc({ outcome: toHttpError(error).code })
  })

  app.post('/api/follows', {
    preHandler: authenticate(tokens),
    schema: {
      security: bearerSecurity,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['followeeId'],
        properties: { followeeId: userIdSchema }
      },
      response: {
        202: { type: 'object', required: ['notification'], properties: { notification: notificationSchema } },
        '4xx': errorSchema,
        '5xx': errorSchema
      }
    }
  }, async (request, reply) => {
    const follower = request.principal.user
    const followee = directory.get(request.body.followeeId)
    if (followee === undefined) throw new ApiError(404, ErrorCode.UNKNOWN_USER, `body/followeeId ${JSON.stringify(request.body.followeeId)} is not a known user`)
    if (followee.id === follower.id) throw new ApiError(400, ErrorCode.SELF_FOLLOW, 'body/followeeId is the signed-in user: users cannot follow themselves')
    const notification = followNotification(follower, followee)
    await bus.publish(notification)
    metrics.follows.inc({ outcome: 'accepted' })
    return reply.code(202).send({ notification })
  })
}

export default followsRoutes
