import type { FastifyRequest } from 'fastify'
import { ErrorCode, RequestError } from '../errors.js'

/**
 * An onRequest hook that answers only requests naming one of `allowed` in their Host header. DNS
 * rebinding lets a hostile page on a name of its own resolve that name to 127.0.0.1: the browser
 * then deems the gateway "same origin" with the page, but the requests still carry the page's name.
 * Browsers always send Host: a request without one (HTTP/1.0, a script) is not such a page.
 */
export function checkHost (allowed: readonly string[]) {
  const hosts = new Set(allowed)
  return async (request: FastifyRequest): Promise<void> => {
    if (request.headers.host === undefined || hosts.has(request.hostname.toLowerCase())) return
    throw new RequestError(ErrorCode.FORBIDDEN, `header host ${JSON.stringify(request.host)} is not a name this gateway answers to (see ALLOWED_HOSTS)`)
  }
}
