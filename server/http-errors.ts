import type { TicketsUnavailableError } from './auth/tickets.js'
import type { AuthError } from './auth/tokens.js'
import { ErrorCode, NotifyError, RequestError } from './errors.js'
import type { IdempotencyUnavailableError } from './idempotency/types.js'
import type { InboxUnavailableError } from './inbox/types.js'
import { KafkaErrorCode } from './kafka/errors.js'

/** What a client is told about an error: the status, a catalogue code, a message, and when to retry. */
export interface HttpError {
  statusCode: number
  code: ErrorCode
  message: string
  /** Seconds, sent as `Retry-After`. */
  retryAfter?: number
}

interface HttpAnswer {
  status: number
  /** Retry-After in seconds, unless the error says when itself. */
  retryAfter?: number
  /** What the client is told instead of the error's own message. */
  message?: (message: string) => string
}

/**
 * The HTTP answer of every catalogue code, the one place that decides statuses (docs/protocol.md
 * lists the same). Every error reaches a client through it, so a status always goes with its code.
 */
const HTTP_ANSWERS: Readonly<Record<ErrorCode, HttpAnswer>> = {
  INVALID_BODY: { status: 400 },
  INVALID_QUERY: { status: 400 },
  INVALID_HEADER: { status: 400 },
  SELF_FOLLOW: { status: 400 },
  UNAUTHORIZED: { status: 401 },
  TOKEN_EXPIRED: { status: 401 },
  FORBIDDEN: { status: 403 },
  UNKNOWN_USER: { status: 404 },
  NOT_FOUND: { status: 404 },
  STALE_CURSOR: { status: 409 },
  BODY_TOO_LARGE: { status: 413 },
  TOO_MANY_RECIPIENTS: { status: 413 },
  RECORD_TOO_LARGE: { status: 413 },
  UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  IDEMPOTENCY_CONFLICT: { status: 422 },
  UPGRADE_REQUIRED: { status: 426 },
  // Retry-After comes with the refusal: the rate limit's window, or 1 s for a full Idempotency-Key share.
  RATE_LIMITED: { status: 429 },
  // A 5xx never carries the error's own message: the drivers' (kafkajs, ioredis, pg) name hosts,
  // addresses and roles. It is logged; the client gets the code and what to do.
  KAFKA_UNAVAILABLE: { status: 503, retryAfter: 1, message: () => 'Kafka did not take the notification in time: retry, with the same Idempotency-Key' },
  REDIS_UNAVAILABLE: { status: 503, retryAfter: 1, message: () => 'Redis, which the gateways share, did not answer, and nothing was done: retry in a moment (a follow with the same Idempotency-Key)' },
  AUTH_UNAVAILABLE: { status: 503, retryAfter: 1, message: () => 'The identity service\'s keys could not be fetched in time, so the token could not be checked: retry in a moment' },
  // A PostgreSQL restart or failover takes seconds, not milliseconds.
  INBOX_UNAVAILABLE: { status: 503, retryAfter: 2, message: () => 'The notification store is unavailable: retry in a moment' },
  SHUTTING_DOWN: { status: 503, retryAfter: 1, message: () => 'The gateway is shutting down: retry in a moment' },
  INTERNAL: { status: 500, message: () => 'Internal Server Error' }
}

/** Every code an error of the gateway carries: the catalogue's, and those of the layers below the routes. */
type Code = ErrorCode | KafkaErrorCode | InboxUnavailableError['code'] | IdempotencyUnavailableError['code'] | TicketsUnavailableError['code'] | AuthError['code']

/**
 * The layers' own codes, as the catalogue code their errors answer with. A client sees one
 * retriable 503 for every kind of "Kafka, not now" (it retries with the same Idempotency-Key), and
 * a 413 for a record that can never fit.
 */
const LAYER_CODES: Readonly<Record<Exclude<Code, ErrorCode>, ErrorCode>> = {
  [KafkaErrorCode.TIMEOUT]: ErrorCode.KAFKA_UNAVAILABLE,
  [KafkaErrorCode.QUEUE_FULL]: ErrorCode.KAFKA_UNAVAILABLE,
  [KafkaErrorCode.CLOSED]: ErrorCode.KAFKA_UNAVAILABLE,
  [KafkaErrorCode.RECORD_TOO_LARGE]: ErrorCode.RECORD_TOO_LARGE,
  IDEMPOTENCY_UNAVAILABLE: ErrorCode.REDIS_UNAVAILABLE,
  TICKETS_UNAVAILABLE: ErrorCode.REDIS_UNAVAILABLE
}

/** Fastify's own codes, as ours, so clients see one stable vocabulary. */
const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ErrorCode.BODY_TOO_LARGE,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ErrorCode.INVALID_BODY,
  FST_ERR_CTP_EMPTY_JSON_BODY: ErrorCode.INVALID_BODY,
  FST_ERR_CTP_INVALID_JSON_BODY: ErrorCode.INVALID_BODY,
  FST_ERR_CTP_EMPTY_TYPE: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_INVALID_TYPE: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  // A path that cannot be decoded (`/%zz`).
  FST_ERR_BAD_URL: ErrorCode.INVALID_QUERY
}

/**
 * Any other 4xx of Fastify or a plugin, by its status: 403, 412 and 416 come from the static files
 * (a path out of their root, `If-Match`, `Range`). A status not listed is a malformed request of
 * some other kind: bodies and headers have codes of their own, so what is left is the URL's.
 */
const FOREIGN_STATUSES: Readonly<Partial<Record<number, ErrorCode>>> = {
  401: ErrorCode.UNAUTHORIZED,
  403: ErrorCode.FORBIDDEN,
  404: ErrorCode.NOT_FOUND,
  412: ErrorCode.INVALID_HEADER,
  413: ErrorCode.BODY_TOO_LARGE,
  415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  416: ErrorCode.INVALID_HEADER,
  429: ErrorCode.RATE_LIMITED
}

/**
 * What the client is told about an error: always a catalogue code with its status. 4xx keep their
 * message (it names the field); anything unexpected becomes a masked 500 (the caller logs it).
 */
export function toHttpError (error: unknown): HttpError {
  const { code, message } = catalogued(error)
  const answer = HTTP_ANSWERS[code]
  const retryAfter = (error instanceof RequestError ? error.retryAfter : undefined) ?? answer.retryAfter
  return {
    statusCode: answer.status,
    code,
    message: answer.message?.(message) ?? message,
    ...(retryAfter === undefined ? {} : { retryAfter })
  }
}

/** The catalogue code of an error, ours or Fastify's or a plugin's, and its own message. */
function catalogued (error: unknown): { code: ErrorCode, message: string } {
  if (error instanceof NotifyError) {
    const code = error.code as Code
    if (Object.hasOwn(HTTP_ANSWERS, code)) return { code: code as ErrorCode, message: error.message }
    if (Object.hasOwn(LAYER_CODES, code)) return { code: LAYER_CODES[code as Exclude<Code, ErrorCode>], message: error.message }
    return { code: ErrorCode.INTERNAL, message: error.message }
  }
  const foreign = error as { code?: unknown, statusCode?: unknown, message?: unknown, validation?: unknown, validationContext?: unknown } | null
  const message = typeof foreign?.message === 'string' ? foreign.message : 'Bad request'
  if (foreign?.validation !== undefined) {
    const context = foreign.validationContext
    return { code: context === 'body' ? ErrorCode.INVALID_BODY : context === 'headers' ? ErrorCode.INVALID_HEADER : ErrorCode.INVALID_QUERY, message }
  }
  const known = typeof foreign?.code === 'string' && Object.hasOwn(FASTIFY_CODES, foreign.code) ? FASTIFY_CODES[foreign.code] : undefined
  if (known !== undefined) return { code: known, message }
  const status = foreign?.statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) return { code: FOREIGN_STATUSES[status] ?? ErrorCode.INVALID_QUERY, message }
  return { code: ErrorCode.INTERNAL, message }
}
