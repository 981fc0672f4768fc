import type { FastifyRequest } from 'fastify'
import { ErrorCode, RequestError } from '../errors.js'
import { toHttpError } from '../http-errors.js'
import { dataProblem, type Notification } from '../notification.js'
import { fingerprintOf, MAX_RECIPIENTS, notificationsOf, publicationSchema } from '../publication.js'
import { schemaErrorFormatter } from '../validation.js'
import { authenticate } from './authenticate.js'
import { settleKeyedAttempt } from './keyed-attempt.js'
import { bearerSecurity, errorResponses, idempotencyKeyHeaders, notificationSchema, type RoutePlugin } from './schemas.js'

/** 1,000 recipients of 64 characters and the largest content fit with room to spare; more is 413. */
const BODY_LIMIT = 256 * 1024

/**
 * POST /api/notifications: a backend, with a service token, publishes one notification to 1 to
 * 1,000 recipients. One record per recipient, keyed by the recipient; 202 only once Kafka has
 * acknowledged every one (acks=-1). With an Idempotency-Key a retry makes the same notifications.
 */
const publishRoutes: RoutePlugin = async (app, { directory, tokens, bus, metrics, limits, idempotency }) => {
  app.addHook('onError', async (_request, _reply, error) => {
    metrics.publishes.inc({ outcome: toHttpError(error).code })
  })

  app.post('/api/notifications', {
    bodyLimit: BODY_LIMIT,
    onRequest: [limits.perIp, authenticate(tokens), serviceOnly],
    // More recipients than a request may have is a 413, not a 400: the request is too large, not wrong.
    schemaErrorFormatter: (errors, dataVar) => {
      const [first] = errors
      if (first?.keyword === 'maxItems' && first.instancePath === '/recipients') {
        return new RequestError(ErrorCode.TOO_MANY_RECIPIENTS, `${dataVar}/recipients must have at most ${MAX_RECIPIENTS} recipients: split the request`)
      }
      return schemaErrorFormatter(errors, dataVar)
    },
    schema: {
      summary: 'Publish one notification to 1–1,000 recipients (service tokens only)',
      security: bearerSecurity,
      headers: idempotencyKeyHeaders,
      body: publicationSchema,
      response: {
        202: {
          description: 'Kafka acknowledged every notification (acks=all)',
          type: 'object',
          required: ['notifications'],
          properties: {
            notifications: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['id', 'userId'],
                properties: { id: notificationSchema.properties.id, userId: notificationSchema.properties.userId }
              }
            }
          }
        },
        ...errorResponses
      }
    }
  }, async (request, reply) => {
    const publication = request.body
    const problem = publication.data === undefined ? undefined : dataProblem(publication.data)
    if (problem !== undefined) throw new RequestError(ErrorCode.INVALID_BODY, `body/data ${problem}`)
    await limits.perService(request, publication.recipients.length)
    const service = request.principal.user.id
    const key = request.headers['idempotency-key']
    const fingerprint = fingerprintOf(publication)
    const nameOf = (id: string): string | undefined => directory.get(id)?.name
    // One request has one time (fresh, or its first try's): its notifications are made once.
    let made: Notification[] | undefined
    const make = (createdAt: string): Notification[] => (made ??= notificationsOf(publication, { service, key, fingerprint, createdAt }, nameOf))
    const answer = (createdAt: string) => ({ notifications: make(createdAt).map(({ id, userId }) => ({ id, userId })) })
    const accepted = (notifications: number): void => {
      metrics.publishes.inc({ outcome: 'accepted' })
      metrics.published.inc(notifications)
    }
    if (key === undefined) {
      const createdAt = new Date().toISOString()
      await bus.publish(make(createdAt), request.deadline)
      accepted(publication.recipients.length)
      return reply.code(202).send(answer(createdAt))
    }
    // What a retry needs besides the request itself (which the fingerprint pins): its time.
    // A service's sub may hold a colon, which the shared store's key names use as separator.
    const attempt = await idempotency.run(encodeURIComponent(service), key, fingerprint, () => ({ createdAt: new Date().toISOString() }),
      ({ createdAt }) => bus.publish(make(createdAt), request.deadline), { deadline: request.deadline })
    const { value, replayed } = await settleKeyedAttempt(attempt, reply, { other: 'a different request', waiting: 'this service\'s requests' })
    if (!replayed) accepted(publication.recipients.length)
    return reply.code(202).send(answer(value.createdAt))
  })
}

/** Only a backend publishes: a user token is refused before its body is read. */
async function serviceOnly (request: FastifyRequest): Promise<void> {
  if (!request.principal.service) {
    throw new RequestError(ErrorCode.FORBIDDEN, `POST /api/notifications needs a service token (scope notify:service); this token is user ${JSON.stringify(request.principal.user.id)}'s`)
  }
}

export default publishRoutes
