import { InboxUnavailableError } from './inbox/types.js'
import { IdempotencyUnavailableError } from './idempotency/types.js'
import { KafkaError, KafkaErrorCode } from './kafka/errors.js'

// Tests and callers that fake a Kafka outage construct this one; it is the Kafka adapter's class.
export { KafkaUnavailableError } from './kafka/errors.js'

/**
 * Every error the API can answer with has a stable `code`. Clients match on `code`, never on
 * `message`; the catalogue is documented in docs/protocol.md.
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
  RECORD_TOO_LARGE: 'RECORD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  UPGRADE_REQUIRED: 'UPGRADE_REQUIRED',
  IDEMPOTENCY_CONFLICT: 'IDEMPOTENCY_CONFLICT',
  STALE_CURSOR: 'STALE_CURSOR',
  RATE_LIMITED: 'RATE_LIMITED',
  KAFKA_UNAVAILABLE: 'KAFKA_UNAVAILABLE',
  REDIS_UNAVAILABLE: 'REDIS_UNAVAILABLE',
  INBOX_UNAVAILABLE: 'INBOX_UNAVAILABLE',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  INTERNAL: 'INTERNAL'
} as const
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode]

export interface ApiErrorOptions {
  cause?: unknown
  /** Seconds a client should wait before retrying (sent as `Retry-After`). */
  retryAfter?: number
}

export class ApiError extends Error {
  readonly statusCode: number
  readonly code: ErrorCode
  readonly retryAfter: number | undefined

  constructor (statusCode: number, code: ErrorCode, message: string, options: ApiErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ApiError'
    this.statusCode = statusCode
    this.code = code
    this.retryAfter = options.retryAfter
  }
}

export interface HttpError {
  statusCode: number
  code: string
  message: string
  retryAfter?: number
}

/** Fastify's own error codes, mapped to ours so clients see one stable vocabulary. */
const FASTIFY_CODES: Record<string, { statusCode: number, code: ErrorCode }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { statusCode: 413, code: ErrorCode.BODY_TOO_LARGE },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { statusCode: 415, code: ErrorCode.UNSUPPORTED_MEDIA_TYPE },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { statusCode: 400, code: ErrorCode.INVALID_BODY },
  FST_ERR_CTP_EMPTY_JSON_BODY: { statusCode: 400, code: ErrorCode.INVALID_BODY },
  FST_ERR_CTP_INVALID_JSON_BODY: { statusCode: 400, code: ErrorCode.INVALID_BODY },
  FST_ERR_CTP_EMPTY_TYPE: { statusCode: 415, code: ErrorCode.UNSUPPORTED_MEDIA_TYPE },
  FST_ERR_CTP_INVALID_TYPE: { statusCode: 415, code: ErrorCode.UNSUPPORTED_MEDIA_TYPE }
}

/**
 * What the client is told about an error. 4xx keep their message (it names the field); anything
 * unexpected becomes a masked 500 (the full error is logged by the caller).
 */
export function toHttpError (error: unknown): HttpError {
  if (error instanceof ApiError) {
    return { statusCode: error.statusCode, code: error.code, message: error.message, ...(error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter }) }
  }
  if (error instanceof KafkaError) return kafkaToHttp(error)
  if (error instanceof IdempotencyUnavailableError) {
    return { statusCode: 503, code: ErrorCode.REDIS_UNAVAILABLE, message: `header idempotency-key: ${error.message}; retry with the same key`, retryAfter: REDIS_RETRY_AFTER_SECONDS }
  }
  if (error instanceof InboxUnavailableError) {
    return { statusCode: 503, code: ErrorCode.INBOX_UNAVAILABLE, message: 'The notification store is unavailable: retry in a moment', retryAfter: INBOX_RETRY_AFTER_SECONDS }
  }
  const fastifyError = error as { code?: unknown, statusCode?: unknown, message?: unknown, validation?: unknown, validationContext?: unknown }
  const message = typeof fastifyError.message === 'string' ? fastifyError.message : 'Bad request'
  if (fastifyError.validation !== undefined) {
    const context = fastifyError.validationContext
    const code = context === 'body' ? ErrorCode.INVALID_BODY : context === 'headers' ? ErrorCode.INVALID_HEADER : ErrorCode.INVALID_QUERY
    return { statusCode: 400, code, message }
  }
  const mapped = typeof fastifyError.code === 'string' ? FASTIFY_CODES[fastifyError.code] : undefined
  if (mapped !== undefined) return { ...mapped, message }
  const status = typeof fastifyError.statusCode === 'number' ? fastifyError.statusCode : 500
  if (status === 429) return { statusCode: 429, code: ErrorCode.RATE_LIMITED, message }
  if (status >= 400 && status < 500) {
    return { statusCode: status, code: typeof fastifyError.code === 'string' ? fastifyError.code : ErrorCode.INVALID_BODY, message }
  }
  return { statusCode: 500, code: ErrorCode.INTERNAL, message: 'Internal Server Error' }
}

/** Seconds a client should wait after a 503 REDIS_UNAVAILABLE before it retries. */
const REDIS_RETRY_AFTER_SECONDS = 1

/** Seconds a client should wait after a 503 KAFKA_UNAVAILABLE before it retries. */
const KAFKA_RETRY_AFTER_SECONDS = 1
/** After a 503 INBOX_UNAVAILABLE: a PostgreSQL restart or failover takes seconds, not milliseconds. */
const INBOX_RETRY_AFTER_SECONDS = 2

/**
 * The Kafka adapter says what failed and whether a retry can help; clients see one retriable 503
 * for every kind of "not now" (they retry with the same Idempotency-Key) and a 413 for a record
 * that can never fit.
 */
function kafkaToHttp (error: KafkaError): HttpError {
  switch (error.code) {
    case KafkaErrorCode.RECORD_TOO_LARGE:
      return { statusCode: 413, code: ErrorCode.RECORD_TOO_LARGE, message: error.message }
    case KafkaErrorCode.UNAVAILABLE:
    case KafkaErrorCode.TIMEOUT:
    case KafkaErrorCode.QUEUE_FULL:
    case KafkaErrorCode.CLOSED:
      return { statusCode: 503, code: ErrorCode.KAFKA_UNAVAILABLE, message: error.message, retryAfter: KAFKA_RETRY_AFTER_SECONDS }
  }
}
