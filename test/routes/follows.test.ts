import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { SignJWT } from 'jose'
import { KafkaErrorCode, KafkaUnavailableError, RecordTooLargeError } from '../../server/kafka/errors.js'
import { signIn } from '../helpers/clients.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

/** What every 503 KAFKA_UNAVAILABLE says, whatever kafkajs said (that goes to the log). */
const KAFKA_LATER = 'Kafka did not take the notification in time: retry, with the same Idempotency-Key'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

function follow (app: FastifyInstance, token: string | undefined, payload: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/api/follows',
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
    payload: payload as Record<string, unknown>
  })
}

t.test('POST /api/follows', async (t) => {
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false })
  const emma = await signIn(app, '1')

  t.test('202 with the notification, once Kafka (the bus) took it', async (t) => {
    const before = bus.published.length
    const response = await follow(app, emma, { followeeId: '2' })
    t.equal(response.statusCode, 202)
    const { notification } = response.json()
    t.match(notification, {
      id: UUID,
      type: 'follow',
      userId: '2',
      actor: { id: '1', name: 'Emma' },
      message: 'Emma started following you.',
      createdAt: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
    })
    t.same(Object.keys(notification).sort(), ['actor', 'createdAt', 'id', 'message', 'type', 'userId'])
    t.equal(bus.published.length, before + 1, 'exactly one record was published')
    t.same(bus.published.at(-1), notification, 'the bus got the notification the client was answered with')
  })

  t.test('the follower is the token\'s user, whatever the body says', async (t) => {
    const rick = await signIn(app, '3')
    const response = await follow(app, rick, { followeeId: '4' })
    t.equal(response.statusCode, 202)
    t.same(response.json().notification.actor, { id: '3', name: 'Rick' })
  })

  t.test('401 UNAUTHORIZED without a token, or with a bad one', async (t) => {
    const count = bus.published.length
    const cases: Array<[string, Record<string, string>]> = [
      ['no token', {}],
      ['garbage token', { authorization: 'Bearer garbage' }],
      ['a tampered token', { authorization: `Bearer ${emma.slice(0, -2)}xx` }],
      ['not a bearer token', { authorization: `Basic ${Buffer.from('1:pw').toString('base64')}` }],
      ['an empty bearer', { authorization: 'Bearer ' }]
    ]
    for (const [what, headers] of cases) {
      const response = await follow(app, undefined, { followeeId: '2' }, headers)
      t.equal(response.statusCode, 401, what)
      t.match(response.json(), { statusCode: 401, error: 'Unauthorized', code: 'UNAUTHORIZED', message: String }, what)
    }
    t.equal(bus.published.length, count, 'nothing was published')
  })

  t.test('the token is not taken from the query string of an API call (only /ws may do that)', async (t) => {
    const count = bus.published.length
    const response = await app.inject({ method: 'POST', url: `/api/follows?token=${emma}`, payload: { followeeId: '2' } })
    t.equal(response.statusCode, 401)
    t.equal(bus.published.length, count)
  })

  t.test('400 INVALID_BODY, with a message that names the field', async (t) => {
    const count = bus.published.length
    const cases: Array<[string, unknown, RegExp]> = [
      ['missing followeeId', {}, /followeeId/],
      ['an object id', { followeeId: { id: '2' } }, /body\/followeeId/],
      ['a null id', { followeeId: null }, /body\/followeeId/],
      ['an id with spaces', { followeeId: 'two words' }, /body\/followeeId/],
      ['an id that is too long', { followeeId: 'x'.repeat(65) }, /body\/followeeId/],
      ['a JSON array body', ['2'], /body/]
    ]
    for (const [what, payload, message] of cases) {
      const response = await follow(app, emma, payload)
      t.equal(response.statusCode, 400, what)
      t.match(response.json(), { statusCode: 400, error: 'Bad Request', code: 'INVALID_BODY', message }, what)
    }
    const notJson = await follow(app, emma, '{"followeeId": ', { 'content-type': 'application/json' })
    t.equal(notJson.statusCode, 400)
    t.equal(notJson.json().code, 'INVALID_BODY', 'a body that is not JSON')
    const empty = await app.inject({ method: 'POST', url: '/api/follows', headers: { authorization: `Bearer ${emma}`, 'content-type': 'application/json' } })
    t.equal(empty.statusCode, 400)
    t.equal(empty.json().code, 'INVALID_BODY', 'an empty body')
    t.equal(bus.published.length, count, 'nothing was published')
  })

  t.test('400 INVALID_BODY for an extra field, naming it', async (t) => {
    const response = await follow(app, emma, { followeeId: '2', note: 'hi' })
    t.equal(response.statusCode, 400)
    t.equal(response.json().code, 'INVALID_BODY')
    t.match(response.json().message, /note/)
  })

  t.test('a user token may not name the follower (only service tokens may)', async (t) => {
    const count = bus.published.length
    const response = await follow(app, emma, { followeeId: '2', followerId: '3' })
    t.equal(response.statusCode, 403)
    t.equal(response.json().code, 'FORBIDDEN')
    t.match(response.json().message, /followerId/)
    t.equal(bus.published.length, count)
  })

  t.test('an extra field is refused', async (t) => {
    const response = await follow(app, emma, { followeeId: '2', note: 'hi' })
    t.equal(response.statusCode, 400)
    t.match(response.json(), { code: 'INVALID_BODY', message: /^body must NOT have additional properties/ })
  })

  t.test('400 INVALID_BODY for a numeric followeeId (ids are strings)', async (t) => {
    for (const followeeId of [2, ['2'], true]) {
      const response = await follow(app, emma, { followeeId })
      t.equal(response.statusCode, 400, JSON.stringify(followeeId))
      t.equal(response.json().code, 'INVALID_BODY')
    }
  })

  t.test('400 SELF_FOLLOW', async (t) => {
    const response = await follow(app, emma, { followeeId: '1' })
    t.equal(response.statusCode, 400)
    t.match(response.json(), { statusCode: 400, code: 'SELF_FOLLOW', message: /followeeId/ })
  })

  t.test('404 UNKNOWN_USER, naming the id', async (t) => {
    const response = await follow(app, emma, { followeeId: '99' })
    t.equal(response.statusCode, 404)
    t.match(response.json(), { statusCode: 404, error: 'Not Found', code: 'UNKNOWN_USER', message: /followeeId "99"/ })
  })

  t.test('413 BODY_TOO_LARGE over 16 KiB', async (t) => {
    const response = await follow(app, emma, { followeeId: '2', padding: 'x'.repeat(17 * 1024) })
    t.equal(response.statusCode, 413)
    t.match(response.json(), { statusCode: 413, code: 'BODY_TOO_LARGE' })
  })

  t.test('415 UNSUPPORTED_MEDIA_TYPE for a form or XML body', async (t) => {
    for (const contentType of ['application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
      const response = await follow(app, emma, 'followeeId=2', { 'content-type': contentType })
      t.equal(response.statusCode, 415, contentType)
      t.match(response.json(), { statusCode: 415, error: 'Unsupported Media Type', code: 'UNSUPPORTED_MEDIA_TYPE' }, contentType)
    }
  })

  t.test('415 UNSUPPORTED_MEDIA_TYPE for a text/plain body', async (t) => {
    const count = bus.published.length
    const response = await follow(app, emma, '{"followeeId":"2"}', { 'content-type': 'text/plain' })
    t.equal(response.statusCode, 415)
    t.match(response.json(), { statusCode: 415, code: 'UNSUPPORTED_MEDIA_TYPE' })
    t.equal(bus.published.length, count)
  })

  t.test('503 KAFKA_UNAVAILABLE with Retry-After while Kafka is down, 202 once it is back', async (t) => {
    const count = bus.published.length
    bus.failWith = new KafkaUnavailableError('down')
    t.teardown(() => { bus.failWith = undefined })
    const response = await follow(app, emma, { followeeId: '2' })
    t.equal(response.statusCode, 503)
    t.equal(response.headers['retry-after'], '1')
    t.same(response.json(), { statusCode: 503, error: 'Service Unavailable', message: KAFKA_LATER, code: 'KAFKA_UNAVAILABLE' })
    t.equal(bus.published.length, count)
    bus.failWith = undefined
    t.equal((await follow(app, emma, { followeeId: '2' })).statusCode, 202)
  })

  t.test('every retriable Kafka failure (timeout, full queue, closing) is the one 503 KAFKA_UNAVAILABLE with Retry-After', async (t) => {
    t.teardown(() => { bus.failWith = undefined })
    for (const code of [KafkaErrorCode.TIMEOUT, KafkaErrorCode.QUEUE_FULL, KafkaErrorCode.CLOSED] as const) {
      bus.failWith = new KafkaUnavailableError(`failed: ${code}`, { code })
      const response = await follow(app, emma, { followeeId: '2' })
      t.equal(response.statusCode, 503, code)
      t.equal(response.headers['retry-after'], '1', code)
      t.same(response.json(), { statusCode: 503, error: 'Service Unavailable', message: KAFKA_LATER, code: 'KAFKA_UNAVAILABLE' }, code)
    }
  })

  t.test('a record Kafka can never take is a 413 RECORD_TOO_LARGE, without Retry-After', async (t) => {
    bus.failWith = new RecordTooLargeError(70_000, 65_536)
    t.teardown(() => { bus.failWith = undefined })
    const response = await follow(app, emma, { followeeId: '2' })
    t.equal(response.statusCode, 413)
    t.equal(response.headers['retry-after'], undefined)
    t.match(response.json(), { statusCode: 413, error: 'Payload Too Large', code: 'RECORD_TOO_LARGE', message: /70000 bytes, more than the 65536/ })
  })

  t.test('an unexpected bus error is a masked 500', async (t) => {
    bus.failWith = new Error('secret internals')
    t.teardown(() => { bus.failWith = undefined })
    const response = await follow(app, emma, { followeeId: '2' })
    t.equal(response.statusCode, 500)
    t.same(response.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error', code: 'INTERNAL' })
  })

  t.test('a retry with the same Idempotency-Key gets the first answer, and nothing is produced twice', async (t) => {
    const count = bus.published.length
    const first = await follow(app, emma, { followeeId: '3' }, { 'idempotency-key': 'retry-1' })
    const second = await follow(app, emma, { followeeId: '3' }, { 'idempotency-key': 'retry-1' })
    t.equal(first.statusCode, 202)
    t.equal(second.statusCode, 202)
    t.same(second.json(), first.json())
    t.equal(bus.published.length, count + 1)
  })

  t.test('idempotent-replayed marks an answer given again: a repeat after a 202 carries it, a retry after a 503 (which produces again) does not', async (t) => {
    t.teardown(() => { bus.failWith = undefined })
    const key = { 'idempotency-key': 'after-503' }
    bus.failWith = new KafkaUnavailableError('down')
    const failed = await follow(app, emma, { followeeId: '4' }, key)
    t.equal(failed.statusCode, 503)
    t.equal(failed.headers['idempotent-replayed'], undefined)
    bus.failWith = undefined
    const count = bus.published.length
    const retried = await follow(app, emma, { followeeId: '4' }, key)
    t.equal(retried.statusCode, 202)
    t.equal(retried.headers['idempotent-replayed'], undefined, 'the retry produced the notification again: not a replay')
    t.equal(bus.published.length, count + 1, 'produced once more')
    const repeated = await follow(app, emma, { followeeId: '4' }, key)
    t.equal(repeated.statusCode, 202)
    t.equal(repeated.headers['idempotent-replayed'], 'true', 'the repeat after the 202 is answered from it')
    t.same(repeated.json(), retried.json(), 'with the same notification')
    t.equal(bus.published.length, count + 1, 'and nothing is produced')
  })

  t.test('a request without a token is refused with 401 before its body is looked at', async (t) => {
    const response = await follow(app, undefined, {})
    t.equal(response.statusCode, 401)
  })
})

t.test('POST /api/follows in AUTH_MODE=jwt takes the identity service\'s tokens', async (t) => {
  const secret = 'an-identity-service-secret-32-chars-long'
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false, env: { AUTH_MODE: 'jwt', AUTH_SECRET: secret, AUTH_ISSUER: 'https://id.example.com/', AUTH_ALLOW_ANY_AUDIENCE: '1' } })
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('4').setIssuer('https://id.example.com/')
    .setExpirationTime('1h').sign(new TextEncoder().encode(secret))
  const response = await follow(app, token, { followeeId: '1' })
  t.equal(response.statusCode, 202)
  t.same(response.json().notification.actor, { id: '4', name: 'Lena' })
  t.equal(bus.published.length, 1)
  const wrongIssuer = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('4').setIssuer('https://evil.example.com/')
    .setExpirationTime('1h').sign(new TextEncoder().encode(secret))
  t.equal((await follow(app, wrongIssuer, { followeeId: '1' })).statusCode, 401)
})
