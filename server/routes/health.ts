import { errorResponses, type RoutePlugin } from './schemas.js'

/**
 * GET /healthz (the process is up) and GET /readyz (Kafka producer and consumer group are usable,
 * and so are the inbox, with DATABASE_URL PostgreSQL, and the fan-out: with REDIS_URL, both Redis
 * connections). /readyz takes no token: it answers each reason's fixed text, and the drivers' own
 * messages, which name hosts, addresses and roles, go to the log.
 */
const healthRoutes: RoutePlugin = async (app, { bus, inbox, fanout }) => {
  /** What the log last heard: each change of readiness is logged once, not at every probe. */
  let logged = '[]'

  app.get('/healthz', {
    schema: {
      summary: 'Liveness: 200 while the process is up',
      response: { 200: { description: 'Up', type: 'object', required: ['status'], properties: { status: { const: 'ok' } } }, ...errorResponses }
    }
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    schema: {
      summary: 'Readiness: Kafka, the consumer group, the inbox and the fan-out usable',
      response: {
        200: { description: 'Ready', type: 'object', required: ['status'], properties: { status: { const: 'ready' } } },
        503: {
          description: 'Not ready, with each reason\'s fixed text',
          type: 'object',
          required: ['status', 'reasons'],
          properties: { status: { const: 'not ready' }, reasons: { type: 'array', items: { type: 'string' } } }
        },
        '4xx': errorResponses['4xx']
      }
    }
  }, async (_request, reply) => {
    const [health, inboxReasons] = await Promise.all([bus.health(), inbox.unreadyReasons()])
    const unready = [...health.ok ? [] : health.reasons, ...inboxReasons, ...fanout.unreadyReasons()]
    const seen = JSON.stringify(unready)
    if (seen !== logged) {
      logged = seen
      if (unready.length > 0) app.log.warn({ reasons: unready }, 'Not ready')
      else app.log.info('Ready again')
    }
    const reasons = [...new Set(unready.map(({ reason }) => reason))]
    if (reasons.length === 0) return { status: 'ready' as const }
    return reply.code(503).send({ status: 'not ready' as const, reasons })
  })
}

export default healthRoutes
