import type { Principal } from '../auth/tokens.js'
import type { Directory, User } from '../directory.js'
import { ErrorCode, RequestError } from '../errors.js'
import { toHttpError } from '../http-errors.js'
import { followNotification } from '../notification.js'
import { authenticate } from './authenticate.js'
import { settleKeyedAttempt } from './keyed-attempt.js'
import { type RoutePlugin, bearerSecurity, errorResponses, idempotencyKeyHeaders, notificationSchema, userIdSchema } from './schemas.js'

/**
 * POST /api/follows: the token's user follows `followeeId`. Answers 202 only once Kafka has
 * acknowledged the record (acks=-1), so an accepted follow is never lost. In jwt mode anyone may be
 * followed (the identity service knows the users, the gateway need not); in dev mode the directory
 * is the demo's whole world.
 */
const followsRoutes: RoutePlugin = async (app, { directory, tokens, bus, metrics, limits, idempotency, config }) => {
  const anyone = config.auth.mode === 'jwt'

  app.addHook('onError', async (_request, _reply, error) => {
    metrics.follows.inc({ outcome: toHttpError(error).code })
  })

  app.post('/api/follows', {
    onRequest: [limits.perIp, authenticate(tokens), limits.perUser],
    schema: {
      summary: 'Follow a user: one follow notification for them, 202 once Kafka has it (acks=all)',
      security: bearerSecurity,
      headers: idempotencyKeyHeaders,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['followeeId'],
        properties: { followeeId: userIdSchema, followerId: userIdSchema }
      },
      response: {
        202: { description: 'Kafka acknowledged the notification (acks=all)', type: 'object', required: ['notification'], properties: { notification: notificationSchema } },
        ...errorResponses
      }
    }
  }, async (request, reply) => {
    const follower = followerOf(request.principal, request.body.followerId, directory, anyone)
    const followee = userOf(request.body.followeeId, directory, anyone)
    if (followee === undefined) throw new RequestError(ErrorCode.UNKNOWN_USER, `body/followeeId ${JSON.stringify(request.body.followeeId)} is not a known user`)
    if (followee.id === follower.id) throw new RequestError(ErrorCode.SELF_FOLLOW, 'body/followeeId is the signed-in user: users cannot follow themselves')
    const key = request.headers['idempotency-key']
    if (key === undefined) {
      const notification = followNotification(follower, followee)
      await bus.publish([notification], request.deadline)
      metrics.follows.inc({ outcome: 'accepted' })
      return reply.code(202).send({ notification })
    }
    // A service token's keys count against the service's own share, not each follower's.
    const attempt = await idempotency.run(follower.id, key, followee.id, () => followNotification(follower, followee),
      (notification) => bus.publish([notification], request.deadline), { owner: request.principal.user.id, deadline: request.deadline })
    const { value, replayed } = await settleKeyedAttempt(attempt, reply, { other: 'a different follow', waiting: 'this caller\'s follows' })
    if (!replayed) metrics.follows.inc({ outcome: 'accepted' })
    return reply.code(202).send({ notification: value })
  })
}

/** A directory user, or with `anyone` any id (named by the directory when it lists them). */
function userOf (id: string, directory: Directory, anyone: boolean): User | undefined {
  return directory.get(id) ?? (anyone ? { id, name: id } : undefined)
}

/** A user follows as themselves; only a service token may name the follower (for backends). */
function followerOf (principal: Principal, followerId: string | undefined, directory: Directory, anyone: boolean): User {
  if (followerId === undefined) {
    if (principal.service && directory.get(principal.user.id) === undefined) {
      throw new RequestError(ErrorCode.INVALID_BODY, 'body must have required property \'followerId\' with a service token')
    }
    return principal.user
  }
  if (!principal.service) throw new RequestError(ErrorCode.FORBIDDEN, 'body/followerId may only be set with a service token')
  const follower = userOf(followerId, directory, anyone)
  if (follower === undefined) throw new RequestError(ErrorCode.UNKNOWN_USER, `body/followerId ${JSON.stringify(followerId)} is not a known user`)
  return follower
}

export default followsRoutes
