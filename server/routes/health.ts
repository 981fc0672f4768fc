import { errorSchema, type RoutePlugin } from './schemas.js'

/**
 * GET /healthz (the process is up) and GET /readyz (Kafka producer and consumer group are usable,
 * and so is the fan-out: with REDIS_URL, both Redis connections).
 */
const healthRoutes: RoutePlugin = async (app, { bus, fanout }) => {
  app.get('/healthz', {
    schema: { response: { 200: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } } } }
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    schema: {
      response: {
        200: { type: 'object', required: ['status'], properties: { status: { const: 'ready' } } },
        503: {
          type: 'object',
          required: ['status', 'reasons'],
          properties: { status: { const: 'not ready' }, reasons: { type: 'array', items: { type: 'string' } } }
        },
        '4xx': errorSchema
      }
    }
  }, async (_request, reply) => {
    const health = await bus.health()
    const reasons = [...health.ok ? [] : health.reasons, ...fanout.unreadyReasons()]
    if (reasons.length === 0) return { status: 'ready' as const }
    return reply.code(503).send({ status: 'not ready' as const, reasons })
  })
}

export default healthRoutes
