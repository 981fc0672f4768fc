import type { FastifyCorsOptions } from '@fastify/cors'
import type { FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { ErrorCode, RequestError } from '../errors.js'

/**
 * Whether a page of `origin` may use the gateway: an origin ALLOWED_ORIGINS lists (`*`: any), or,
 * when it is unset, one of `own` (the gateway's own origins, where a route needs them allowed).
 * One rule for the API (CORS) and /ws.
 */
export function isAllowedOrigin (origin: string, allowed: readonly string[] | undefined, own: readonly string[]): boolean {
  if (allowed === undefined) return own.includes(origin)
  return allowed.includes('*') || allowed.includes(origin)
}

/**
 * CORS for the REST API: allowed origins get their origin back (and credentials only with
 * CORS_CREDENTIALS); any other origin, or a request without one, gets no CORS header at all, and
 * its preflight a 404. Without ALLOWED_ORIGINS there is no CORS: the gateway's own page needs none.
 */
export function corsOptions (config: Pick<Config, 'allowedOrigins' | 'corsCredentials'>): FastifyCorsOptions {
  const allowed = config.allowedOrigins
  return {
    // The gateway's own page is same-origin: it needs no CORS header, so none is its own origin's.
    origin: (origin, callback) => { callback(null, origin !== undefined && isAllowedOrigin(origin, allowed, []) ? origin : false) },
    credentials: config.corsCredentials,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'idempotency-key'],
    exposedHeaders: ['retry-after', 'idempotent-replayed'],
    // Browsers cap it (Chromium at 2 h); 10 minutes spares most preflights and picks up a changed list soon.
    maxAge: 600
  }
}

/**
 * An onRequest hook for a route that browsers open without CORS (a WebSocket upgrade): a page of an
 * origin not allowed is refused with 403. Clients that send no Origin (apps, scripts) are not browsers.
 */
export function checkOrigin (allowed: readonly string[] | undefined, route: string) {
  return async (request: FastifyRequest): Promise<void> => {
    const origin = request.headers.origin
    if (origin === undefined || isAllowedOrigin(origin, allowed, [`http://${request.host}`, `https://${request.host}`])) return
    throw new RequestError(ErrorCode.FORBIDDEN, `header origin ${JSON.stringify(origin)} may not open ${route} (see ALLOWED_ORIGINS)`)
  }
}
