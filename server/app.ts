import { STATUS_CODES } from 'node:http'
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fastifyCors from '@fastify/cors'
import fastifyWebsocket from '@fastify/websocket'
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { Config } from './config.js'
import { ErrorCode, RequestError } from './errors.js'
import { CloseCode } from './hub/close-codes.js'
import { toHttpError } from './http-errors.js'
import { APP_SUBPROTOCOL } from './routes/authenticate.js'
import type { Services } from './services.js'
import { schemaErrorFormatter, validatorCompiler } from './validation.js'
import followsRoutes from './routes/follows.js'
import { stampDeadlines } from './routes/deadline.js'
import { FeedSockets } from './routes/feed-sockets.js'
import { checkHost } from './routes/host-check.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import feedStateRoutes from './routes/feed-state.js'
import notificationsRoutes from './routes/notifications.js'
import preferencesRoutes from './routes/preferences.js'
import publishRoutes from './routes/publish.js'
import type { AppContext } from './routes/schemas.js'
import { registerOpenApi } from './routes/openapi.js'
import { corsOptions } from './routes/origins.js'
import { registerRateLimits } from './routes/rate-limits.js'
import sessionsRoutes from './routes/sessions.js'
import sseRoutes from './routes/sse.js'
import ticketsRoutes from './routes/tickets.js'
import tutorialRoutes from './routes/tutorial.js'
import usersRoutes from './routes/users.js'
import webRoutes from './routes/web.js'
import wsRoutes from './routes/ws.js'

/** Follow bodies are tiny; anything near this is not a follow. */
const BODY_LIMIT = 16 * 1024
/** Clients never send frames; ws refuses anything larger than this before we see it. */
const WS_MAX_PAYLOAD = 1024

export interface BuildAppOptions {
  logger?: FastifyServerOptions['loggerInstance']
}

/**
 * Builds the gateway (without listening): routes, error handling, and the lifecycle that starts
 * consuming (in the background) once the app is ready and releases every service on close.
 */
export async function buildApp (config: Config, services: Services, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger === undefined ? { logger: { level: config.logLevel } } : { loggerInstance: options.logger }),
    bodyLimit: BODY_LIMIT,
    // Per-request log lines cost a third of the throughput; errors are still logged below.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    // Requests that arrive while closing get our 503 SHUTTING_DOWN (below), with a code like every error.
    return503OnClosing: false,
    trustProxy: config.trustProxy,
    schemaErrorFormatter,
    // An undecodable URL (`/%zz`) is refused before routing, and answered here like every error.
    frameworkErrors: (error, request, reply) => answerError(error, request, reply)
  }).withTypeProvider<JsonSchemaToTsProvider>()
  stampDeadlines(app, config.kafka.sendTimeoutMs)
  app.setValidatorCompiler(validatorCompiler)
  // Only JSON (and, for the tutorial routes, forms) is accepted: text/plain is a 415.
  app.removeContentTypeParser('text/plain')

  if (config.allowedHosts !== undefined) app.addHook('onRequest', checkHost(config.allowedHosts))
  app.setErrorHandler(answerError)
  app.setNotFoundHandler(async (request) => {
    throw new RequestError(ErrorCode.NOT_FOUND, `Route ${request.method} ${request.url.split('?')[0] ?? ''} not found`)
  })

  // Keep-alive connections busy when close began would otherwise stay open (Fastify's keep-alive
  // timeout is 72 s) and hold the shutdown: answers from then on close their connection.
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onRequest', async () => {
    if (closing) throw new RequestError(ErrorCode.SHUTTING_DOWN, 'The gateway is shutting down: retry in a moment')
  })
  app.addHook('onSend', async (_request, reply) => {
    if (closing) void reply.header('connection', 'close')
  })

  // Before every route's own hooks: a preflight carries no token, and is answered here.
  await app.register(fastifyCors, corsOptions(config))
  const limits = await registerRateLimits(app, config, services.redis)
  const context: AppContext = { ...services, config, limits, feedSockets: new FeedSockets(services.hub, services.relay, config.ws, services.clock) }
  await app.register(fastifyWebsocket, {
    options: {
      maxPayload: WS_MAX_PAYLOAD,
      clientTracking: false,
      perMessageDeflate: false,
      // A browser that offered its token as a subprotocol gets the app's own back, never the token.
      handleProtocols: (offered) => offered.has(APP_SUBPROTOCOL) ? APP_SUBPROTOCOL : false
    },
    preClose: async () => { services.hub.closeAll(CloseCode.GOING_AWAY, 'server shutting down') }
  })
  await registerOpenApi(app)
  await app.register(healthRoutes, context)
  await app.register(metricsRoutes, context)
  await app.register(usersRoutes, context)
  if (config.auth.mode === 'dev') await app.register(sessionsRoutes, context)
  await app.register(ticketsRoutes, context)
  await app.register(followsRoutes, context)
  await app.register(notificationsRoutes, context)
  await app.register(feedStateRoutes, context)
  await app.register(preferencesRoutes, context)
  await app.register(publishRoutes, context)
  await app.register(wsRoutes, context)
  await app.register(sseRoutes, context)
  if (config.compatTutorial) await app.register(tutorialRoutes, context)
  await app.register(webRoutes, context)

  // Not awaited: joining the group can outlast Fastify's 10 s onReady budget (a SIGKILLed member
  // holds the group for its session timeout). The gateway listens meanwhile; /readyz says why not ready.
  app.addHook('onReady', async () => { services.startConsuming() })
  app.addHook('onClose', () => services.close())
  return app
}

/** Every error answer: Fastify's JSON error shape, with a catalogue code and its status (server/http-errors.ts). */
function answerError (error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const answer = toHttpError(error)
  if (answer.statusCode >= 500) request.log.error({ err: error }, 'Request failed')
  if (answer.retryAfter !== undefined) void reply.header('retry-after', String(answer.retryAfter))
  return reply.code(answer.statusCode).send({
    statusCode: answer.statusCode,
    error: STATUS_CODES[answer.statusCode] ?? 'Error',
    message: answer.message,
    code: answer.code
  })
}
