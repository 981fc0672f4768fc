import { errorSchema, type RoutePlugin } from './schemas.js'

/** GET /healthz (the process is up) and GET /readyz (Kafka producer and consumer group are usable). */
const healthRoutes: RoutePlugin = async (app, { bus }) => {
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
    if (health.ok) return { status: 'ready' as const }
    return reply.code(503).send({ status: 'not ready' as const, reasons: health.reasons })
  })
}

export default healthRoutes
