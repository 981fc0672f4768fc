import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Principal, Tokens } from '../auth/tokens.js'
import { ErrorCode, RequestError } from '../errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `authenticate`: the user the request's token speaks for. */
    principal: Principal
  }
}

export interface AuthenticateOptions {
  /** Only `/ws` takes `?token=`: browsers cannot set headers on a WebSocket upgrade. */
  queryToken?: boolean
}

/**
 * An onRequest hook that requires a valid bearer token. It runs before the body is read, so an
 * anonymous caller learns nothing about the route but 401.
 */
export function authenticate (tokens: Tokens, options: AuthenticateOptions = {}) {
  return async function (request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const token = bearerToken(request, options.queryToken === true)
    if (token === undefined) throw new RequestError(ErrorCode.UNAUTHORIZED, 'A bearer token is required (Authorization: Bearer <token>)')
    request.principal = await tokens.verify(token)
  }
}

function bearerToken (request: FastifyRequest, fromQuery: boolean): string | undefined {
  const header = request.headers.authorization
  if (header !== undefined) {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header)
    return match?.[1]
  }
  if (!fromQuery) return undefined
  const query = request.query as { token?: unknown } | undefined
  return typeof query?.token === 'string' && query.token !== '' ? query.token : undefined
}
