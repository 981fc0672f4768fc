import type { FastifyReply } from 'fastify'
import { ErrorCode, RequestError } from '../errors.js'
import type { KeyedAttempt } from '../idempotency/types.js'

/** How a route names what its keys stand for, in its refusals. */
export interface KeyedWords {
  /** What a key used twice stood for the first time, e.g. `a different follow`. */
  other: string
  /** Whose attempts wait for Kafka, e.g. `this caller's follows`. */
  waiting: string
}

/**
 * The outcome of a request with an Idempotency-Key (docs/protocol.md): a key used for another
 * request is refused (422), as is a caller with too many attempts still waiting for Kafka (429);
 * otherwise it waits until the attempt's records are acknowledged, and marks a duplicate's answer
 * as replayed. Resolves the attempt's value, and whether it was a replay (counted as accepted once only).
 */
export async function settleKeyedAttempt<T> (attempt: KeyedAttempt<T>, reply: FastifyReply, words: KeyedWords): Promise<{ value: T, replayed: boolean }> {
  if (attempt.kind === 'conflict') {
    throw new RequestError(ErrorCode.IDEMPOTENCY_CONFLICT, `header idempotency-key was already used for ${words.other}`)
  }
  if (attempt.kind === 'full') {
    throw new RequestError(ErrorCode.RATE_LIMITED, `header idempotency-key: too many of ${words.waiting} are still waiting for Kafka; retry in a moment`, { retryAfter: 1 })
  }
  await attempt.publishing
  const replayed = attempt.kind === 'duplicate'
  if (replayed) void reply.header('idempotent-replayed', 'true')
  return { value: attempt.value, replayed }
}
