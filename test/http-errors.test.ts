import { readFileSync } from 'node:fs'
import t from 'tap'
import fc from 'fast-check'
import { AuthError } from '../server/auth/tokens.js'
import { ErrorCode, NotifyError, RequestError } from '../server/errors.js'
import { toHttpError } from '../server/http-errors.js'
import { IdempotencyUnavailableError } from '../server/idempotency/types.js'
import { InboxUnavailableError } from '../server/inbox/types.js'
import { KafkaErrorCode, KafkaUnavailableError, RecordTooLargeError } from '../server/kafka/errors.js'

interface Documented { status: number, retryAfter: number | undefined }

/** The catalogue as docs/protocol.md lists it: `| \`CODE\` | status | when |`, with `Retry-After: N` where it says one. */
function documentedCatalogue (): Map<string, Documented> {
  const text = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8')
  const section = text.slice(text.indexOf('\n## Errors\n'), text.indexOf('\n## HTTP API\n'))
  const rows = new Map<string, Documented>()
  for (const [, code, status, when] of section.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| (.*) \|$/gm)) {
    const retryAfter = /`Retry-After: (\d+)`/.exec(when!)?.[1]
    rows.set(code!, { status: Number(status), retryAfter: retryAfter === undefined ? undefined : Number(retryAfter) })
  }
  return rows
}

const catalogue = documentedCatalogue()
const CODES: readonly string[] = Object.values(ErrorCode)

t.test('docs/protocol.md lists every catalogue code, and each is answered with the status and Retry-After it documents', async (t) => {
  t.same([...catalogue.keys()].sort(), [...CODES].sort(), 'the documented codes are the catalogue')
  for (const code of Object.values(ErrorCode)) {
    const answer = toHttpError(new RequestError(code, 'why'))
    t.equal(answer.code, code)
    t.equal(answer.statusCode, catalogue.get(code)?.status, `${code}: status`)
    t.equal(answer.retryAfter, catalogue.get(code)?.retryAfter, `${code}: Retry-After`)
  }
})

t.test('a refusal that says when to retry is answered with that Retry-After', async (t) => {
  t.same(toHttpError(new RequestError(ErrorCode.RATE_LIMITED, 'Too many requests', { retryAfter: 42 })),
    { statusCode: 429, code: 'RATE_LIMITED', message: 'Too many requests', retryAfter: 42 })
})

const KAFKA_LATER = 'Kafka did not take the notification in time: retry, with the same Idempotency-Key'

t.test('the layers\' errors answer with catalogue codes', async (t) => {
  t.same(toHttpError(new KafkaUnavailableError('Kafka is unavailable: down')),
    { statusCode: 503, code: 'KAFKA_UNAVAILABLE', message: KAFKA_LATER, retryAfter: 1 })
  for (const code of [KafkaErrorCode.TIMEOUT, KafkaErrorCode.QUEUE_FULL, KafkaErrorCode.CLOSED] as const) {
    t.same(toHttpError(new KafkaUnavailableError(`failed: ${code}`, { code })),
      { statusCode: 503, code: 'KAFKA_UNAVAILABLE', message: KAFKA_LATER, retryAfter: 1 }, `${code}: one retriable 503 for every "Kafka, not now"`)
  }
  t.same(toHttpError(new RecordTooLargeError(70_000, 65_536)),
    { statusCode: 413, code: 'RECORD_TOO_LARGE', message: 'the notification is a Kafka record of 70000 bytes, more than the 65536 bytes a record may have' })
  t.same(toHttpError(new InboxUnavailableError('inbox (PostgreSQL) unreachable: connect ECONNREFUSED 10.0.0.7:5432')),
    { statusCode: 503, code: 'INBOX_UNAVAILABLE', message: 'The notification store is unavailable: retry in a moment', retryAfter: 2 },
    'the store\'s own message (hosts, users) stays in the log')
  t.same(toHttpError(new IdempotencyUnavailableError('Redis did not answer (timeout)')),
    { statusCode: 503, code: 'REDIS_UNAVAILABLE', message: 'Redis, which the gateways share, did not answer, and nothing was done: retry in a moment (a follow with the same Idempotency-Key)', retryAfter: 1 })
  t.same(toHttpError(new AuthError(ErrorCode.TOKEN_EXPIRED, 'The token has expired: get a new one')),
    { statusCode: 401, code: 'TOKEN_EXPIRED', message: 'The token has expired: get a new one' })
  t.same(toHttpError(new AuthError(ErrorCode.UNAUTHORIZED, 'The token is invalid')),
    { statusCode: 401, code: 'UNAUTHORIZED', message: 'The token is invalid' })
})

t.test('Fastify\'s errors answer with catalogue codes', async (t) => {
  const validation = (validationContext: string): unknown => Object.assign(new Error(`${validationContext}/x must be string`), { validation: [{}], validationContext, statusCode: 400, code: 'FST_ERR_VALIDATION' })
  t.same(toHttpError(validation('body')), { statusCode: 400, code: 'INVALID_BODY', message: 'body/x must be string' })
  t.same(toHttpError(validation('headers')), { statusCode: 400, code: 'INVALID_HEADER', message: 'headers/x must be string' })
  t.same(toHttpError(validation('querystring')), { statusCode: 400, code: 'INVALID_QUERY', message: 'querystring/x must be string' })
  t.same(toHttpError(validation('params')), { statusCode: 400, code: 'INVALID_QUERY', message: 'params/x must be string' })
  const fastify = (code: string, statusCode: number): unknown => Object.assign(new Error(code), { code, statusCode })
  t.same(toHttpError(fastify('FST_ERR_CTP_BODY_TOO_LARGE', 413)), { statusCode: 413, code: 'BODY_TOO_LARGE', message: 'FST_ERR_CTP_BODY_TOO_LARGE' })
  t.same(toHttpError(fastify('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415)), { statusCode: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' })
  t.same(toHttpError(fastify('FST_ERR_CTP_INVALID_JSON_BODY', 400)), { statusCode: 400, code: 'INVALID_BODY', message: 'FST_ERR_CTP_INVALID_JSON_BODY' })
  t.same(toHttpError(fastify('FST_ERR_BAD_URL', 400)), { statusCode: 400, code: 'INVALID_QUERY', message: 'FST_ERR_BAD_URL' })
})

t.test('a 4xx of Fastify or a plugin without a code of ours maps into the catalogue by its status', async (t) => {
  const foreign = (statusCode: number, code?: string): unknown => Object.assign(new Error('as the plugin says'), { statusCode, ...(code === undefined ? {} : { code }) })
  t.same(toHttpError(foreign(403)), { statusCode: 403, code: 'FORBIDDEN', message: 'as the plugin says' })
  t.same(toHttpError(foreign(404)), { statusCode: 404, code: 'NOT_FOUND', message: 'as the plugin says' })
  t.same(toHttpError(foreign(429, 'FST_ERR_RATE_LIMITED')), { statusCode: 429, code: 'RATE_LIMITED', message: 'as the plugin says' })
  t.same(toHttpError(foreign(416)), { statusCode: 400, code: 'INVALID_HEADER', message: 'as the plugin says' }, 'a Range the static files cannot satisfy')
  t.same(toHttpError(foreign(412)), { statusCode: 400, code: 'INVALID_HEADER', message: 'as the plugin says' })
  t.same(toHttpError(foreign(400, 'FST_ERR_SOMETHING_NEW')), { statusCode: 400, code: 'INVALID_QUERY', message: 'as the plugin says' }, 'a code outside the catalogue never reaches the client')
  t.same(toHttpError(foreign(418)), { statusCode: 400, code: 'INVALID_QUERY', message: 'as the plugin says' })
})

t.test('anything unexpected is a masked 500 INTERNAL', async (t) => {
  const internal = { statusCode: 500, code: 'INTERNAL', message: 'Internal Server Error' }
  t.same(toHttpError(new Error('SQLITE_CORRUPT: /var/lib/notify/inbox.sqlite')), internal)
  t.same(toHttpError(Object.assign(new Error('upstream'), { statusCode: 503, code: 'ECONNRESET' })), internal, 'a foreign 5xx')
  t.same(toHttpError(new NotifyError('SOMETHING_NEW', 'a code the edge does not know', { canRetry: false })), internal, 'one of ours whose code has no answer')
  t.same(toHttpError('a thrown string'), internal)
  t.same(toHttpError(null), internal)
})

t.test('whatever is thrown, the client gets a catalogue code with its documented status', async (t) => {
  const thrown = fc.oneof(
    fc.anything(),
    fc.record({ statusCode: fc.integer({ min: 0, max: 999 }), code: fc.oneof(fc.string(), fc.constantFrom('FST_ERR_BAD_URL', 'FST_ERR_CTP_EMPTY_TYPE', 'INVALID_BODY', 'toString', '__proto__')), message: fc.string() }, { requiredKeys: [] }),
    fc.record({ validation: fc.anything(), validationContext: fc.anything(), message: fc.string() }, { requiredKeys: ['validation'] }),
    fc.tuple(fc.string(), fc.string(), fc.boolean()).map(([code, message, canRetry]) => new NotifyError(code, message, { canRetry }))
  )
  fc.assert(fc.property(thrown, (error) => {
    const answer = toHttpError(error)
    return CODES.includes(answer.code) && answer.statusCode === catalogue.get(answer.code)?.status && typeof answer.message === 'string'
  }), { seed: 14, numRuns: 2000 })
  t.pass('2,000 thrown values, each answered from the catalogue')
})

// Regression: 503 bodies carried kafkajs's and ioredis's messages, with the
// brokers' and Redis's addresses, to any caller.
t.test('a 5xx never tells the client what the driver said: hosts, addresses and roles stay in the log', async (t) => {
  const drivers = [
    new KafkaUnavailableError('Kafka is unavailable: Connection error: connect ECONNREFUSED 10.1.2.3:9092', { cause: new Error('connect ECONNREFUSED 10.1.2.3:9092') }),
    new KafkaUnavailableError('Kafka is unavailable: This server is not the leader for that topic-partition (broker kafka-2.internal:9092)'),
    new IdempotencyUnavailableError('Redis did not answer (connect ECONNREFUSED 10.4.5.6:6379)'),
    new InboxUnavailableError('inbox (PostgreSQL) unreachable: password authentication failed for user "notify_admin"'),
    new RequestError(ErrorCode.SHUTTING_DOWN, 'closing the consumer of kafka-1.internal'),
    new Error('connect ECONNREFUSED 10.7.8.9:5432')
  ]
  for (const error of drivers) {
    const answer = toHttpError(error)
    t.ok(answer.statusCode >= 500, `${answer.code}: a 5xx`)
    t.notMatch(answer.message, /\d+\.\d+\.\d+\.\d+|internal|ECONNREFUSED|notify_admin|leader/, `${answer.code}: ${answer.message}`)
  }
})
