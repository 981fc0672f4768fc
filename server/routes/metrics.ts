import type { RoutePlugin } from './schemas.js'

/** GET /metrics: Prometheus text format. */
const metricsRoutes: RoutePlugin = async (app, { metrics }) => {
  app.get('/metrics', async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}

export default metricsRoutes
