import type { FastifyReply } from 'fastify'
import t from 'tap'
import { ErrorCode, RequestError } from '../../server/errors.js'
import { settleKeyedAttempt } from '../../server/routes/keyed-attempt.js'

const WORDS = { other: 'a different thing', waiting: 'this caller\'s things' }

/** A reply that records the headers set on it. */
function reply (): { reply: FastifyReply, headers: Record<string, string> } {
  const headers: Record<string, string> = {}
  const fake = { header (name: string, value: string) { headers[name] = value; return fake } }
  return { reply: fake as unknown as FastifyReply, headers }
}

t.test('a key used for another request is 422 IDEMPOTENCY_CONFLICT, naming the header and what it stood for', async (t) => {
  const error = await settleKeyedAttempt({ kind: 'conflict' }, reply().reply, WORDS).catch((error: unknown) => error)
  t.ok(error instanceof RequestError)
  t.match(error, { code: ErrorCode.IDEMPOTENCY_CONFLICT, message: 'header idempotency-key was already used for a different thing' })
})

t.test('a caller with too many attempts waiting is RATE_LIMITED, retry after 1 s', async (t) => {
  const error = await settleKeyedAttempt({ kind: 'full' }, reply().reply, WORDS).catch((error: unknown) => error)
  t.match(error, { code: ErrorCode.RATE_LIMITED, message: /too many of this caller's things are still waiting for Kafka/, retryAfter: 1 })
})

t.test('a new attempt waits for its records; a duplicate is marked replayed', async (t) => {
  let published = false
  const publishing = Promise.resolve().then(() => { published = true })
  const fresh = reply()
  t.same(await settleKeyedAttempt({ kind: 'new', value: 7, publishing }, fresh.reply, WORDS), { value: 7, replayed: false })
  t.ok(published, 'answered only once the records were acknowledged')
  t.same(fresh.headers, {})
  const again = reply()
  t.same(await settleKeyedAttempt({ kind: 'duplicate', value: 7, publishing }, again.reply, WORDS), { value: 7, replayed: true })
  t.same(again.headers, { 'idempotent-replayed': 'true' })
})

t.test('a failed publish fails the request', async (t) => {
  await t.rejects(settleKeyedAttempt({ kind: 'retry', value: 1, publishing: Promise.reject(new Error('kafka down')) }, reply().reply, WORDS), { message: 'kafka down' })
})
