import type { FastifyReply, FastifyRequest } from 'fastify'
import { TICKET_PATTERN, type Tickets } from '../auth/tickets.js'
import type { Principal, Tokens } from '../auth/tokens.js'
import { ErrorCode, RequestError } from '../errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `authenticate`: the user the request's token speaks for. */
    principal: Principal
  }
}

export interface AuthenticateOptions {
  /**
   * Given for a streaming endpoint (`/ws`, `/sse`), where browsers cannot set headers: it also
   * takes the token as a WebSocket subprotocol (`bearer.<token>`, beside `kafka-notify`), a
   * one-time `?ticket=` (POST /api/tickets) and, discouraged because proxies log URLs, `?token=`.
   * The Authorization header, when present, is used instead of any of them, and the subprotocol
   * instead of the query.
   */
  tickets?: Tickets
}

const TICKET = new RegExp(TICKET_PATTERN)

/**
 * An onRequest hook that requires a valid bearer token (or, on a streaming endpoint, a ticket). It
 * runs before the body is read, so an anonymous caller learns nothing about the route but 401.
 */
export function authenticate (tokens: Tokens, options: AuthenticateOptions = {}) {
  return async function (request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const query = options.tickets === undefined ? undefined : request.query as { ticket?: unknown } | undefined
    if (request.headers.authorization === undefined && subprotocolToken(request) === undefined && typeof query?.ticket === 'string') {
      // The query is validated after this hook: a string that is no ticket is not looked up.
      const principal = TICKET.test(query.ticket) ? await options.tickets!.redeem(query.ticket) : undefined
      if (principal === undefined) throw new RequestError(ErrorCode.UNAUTHORIZED, 'querystring/ticket is unknown, expired or used already: get a new one (POST /api/tickets)')
      request.principal = principal
      return
    }
    const token = bearerToken(request, options.tickets !== undefined)
    if (token === undefined) throw new RequestError(ErrorCode.UNAUTHORIZED, 'A bearer token is required (Authorization: Bearer <token>)')
    request.principal = await tokens.verify(token, request.deadline)
  }
}

function bearerToken (request: FastifyRequest, fromQuery: boolean): string | undefined {
  const header = request.headers.authorization
  if (header !== undefined) {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header)
    return match?.[1]
  }
  if (!fromQuery) return undefined
  const offered = subprotocolToken(request)
  if (offered !== undefined) return offered
  const query = request.query as { token?: unknown } | undefined
  return typeof query?.token === 'string' && query.token !== '' ? query.token : undefined
}

/** The prefix of the subprotocol that carries a token: `Sec-WebSocket-Protocol: kafka-notify, bearer.<token>`. */
export const BEARER_SUBPROTOCOL_PREFIX = 'bearer.'
/** What the gateway answers in `Sec-WebSocket-Protocol` when a client offers it (browsers require one of theirs). */
export const APP_SUBPROTOCOL = 'kafka-notify'

/**
 * The token a browser offered as a WebSocket subprotocol: it cannot set an Authorization header
 * on a WebSocket, and a subprotocol, unlike the URL, is not logged by proxies nor kept in history.
 */
function subprotocolToken (request: FastifyRequest): string | undefined {
  const header = request.headers['sec-websocket-protocol']
  if (typeof header !== 'string') return undefined
  for (const offered of header.split(',')) {
    const value = offered.trim()
    if (value.startsWith(BEARER_SUBPROTOCOL_PREFIX) && value.length > BEARER_SUBPROTOCOL_PREFIX.length) return value.slice(BEARER_SUBPROTOCOL_PREFIX.length)
  }
  return undefined
}
