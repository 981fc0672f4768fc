import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Principal, Tokens } from '../auth/tokens.js'
import { ApiError, ErrorCode } from '../errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `authenticate`: the user the request's token speaks for. */
    principal: Principal
  }
}

/**
 * A preHandler that requires a valid bearer token. `/ws` may carry it as `?token=` instead,
 * since browsers cannot set headers on a WebSocket upgrade.
 */
export function authenticate (tokens: Tokens) {
  return async function (request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const token = bearerToken(request)
    if (token === undefined) throw new ApiError(401, ErrorCode.UNAUTHORIZED, 'A bearer token is required (Authorization: Bearer <token>)')
    request.principal = await tokens.verify(token)
  }
}

function bearerToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header !== undefined) {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header)
    return match?.[1]
  }
  const query = request.query as { token?: unknown } | undefined
  return typeof query?.token === 'string' && query.token !== '' ? query.token : undefined
}
