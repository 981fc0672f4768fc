import type { RoutePlugin } from './schemas.js'

/** GET /metrics: Prometheus text format. */
const metricsRoutes: RoutePlugin = async (app, { metrics }) => {
  // Prometheus's text format for operators, not part of the API the OpenAPI document describes.
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}

export default metricsRoutes
