/**
 * The base of every error the gateway throws on purpose. It says what failed (`code`, stable:
 * callers and clients match on it, never on `message`) and whether the same call, tried again
 * later, can succeed (`canRetry`); never which HTTP status it becomes: the answer to each code is
 * decided in one table at the edge (server/http-errors.ts).
 */
export class NotifyError<Code extends string = string> extends Error {
  readonly code: Code
  readonly canRetry: boolean

  constructor (code: Code, message: string, options: { canRetry: boolean, cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.canRetry = options.canRetry
  }
}

/**
 * The codes clients see: one closed catalogue, documented in docs/protocol.md. Errors of the layers
 * below the routes carry codes of their own where a client needs no other answer (the Kafka
 * adapter's timeouts and closed bus all answer KAFKA_UNAVAILABLE); the edge maps them here.
 */
export const ErrorCode = {
  INVALID_BODY: 'INVALID_BODY',
  INVALID_QUERY: 'INVALID_QUERY',
  INVALID_HEADER: 'INVALID_HEADER',
  SELF_FOLLOW: 'SELF_FOLLOW',
  UNAUTHORIZED: 'UNAUTHORIZED',
  TOKEN_EXPIRED: 'TOKEN_EXPIRED',
  FORBIDDEN: 'FORBIDDEN',
  UNKNOWN_USER: 'UNKNOWN_USER',
  NOT_FOUND: 'NOT_FOUND',
  BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  TOO_MANY_RECIPIENTS: 'TOO_MANY_RECIPIENTS',
  RECORD_TOO_LARGE: 'RECORD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  UPGRADE_REQUIRED: 'UPGRADE_REQUIRED',
  IDEMPOTENCY_CONFLICT: 'IDEMPOTENCY_CONFLICT',
  STALE_CURSOR: 'STALE_CURSOR',
  RATE_LIMITED: 'RATE_LIMITED',
  KAFKA_UNAVAILABLE: 'KAFKA_UNAVAILABLE',
  REDIS_UNAVAILABLE: 'REDIS_UNAVAILABLE',
  AUTH_UNAVAILABLE: 'AUTH_UNAVAILABLE',
  INBOX_UNAVAILABLE: 'INBOX_UNAVAILABLE',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  INTERNAL: 'INTERNAL'
} as const
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode]

/** Refusals that pass by themselves: the same request succeeds later. The others need a different request. */
const PASSING: ReadonlySet<ErrorCode> = new Set([ErrorCode.RATE_LIMITED, ErrorCode.SHUTTING_DOWN])

/** A request the routes refuse as it was sent: bad input, an unknown user, a conflict, a limit, a shutdown. */
export class RequestError extends NotifyError<ErrorCode> {
  /** Seconds until a retry can succeed, when the refusal knows (a rate limit's window). */
  readonly retryAfter: number | undefined

  constructor (code: ErrorCode, message: string, options: { retryAfter?: number, cause?: unknown } = {}) {
    super(code, message, { canRetry: PASSING.has(code), cause: options.cause })
    this.retryAfter = options.retryAfter
  }
}
