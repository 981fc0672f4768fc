import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { SignJWT } from 'jose'
import { KafkaUnavailableError } from '../../server/kafka/errors.js'
import type { Notification } from '../../server/notification.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

const SECRET = 'the-identity-service-secret-for-publishing'
const AUDIENCE = 'kafka-notify'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[78][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

interface Accepted { notifications: Array<{ id: string, userId: string }> }

/** A token of the identity service (AUTH_MODE=jwt): a user's, or with `scope` a service's. */
async function idToken (sub: string, claims: Record<string, unknown> = {}): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setAudience(AUDIENCE).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))
}

const serviceToken = async (sub = 'comments-backend'): Promise<string> => await idToken(sub, { scope: 'notify:service' })

function publish (app: FastifyInstance, token: string | undefined, payload: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/api/notifications',
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
    payload: payload as Record<string, unknown>
  })
}

const reply = {
  recipients: ['u-7f3a', 'u-90b1'],
  type: 'comment.reply',
  message: 'Ana replied to your comment.',
  title: 'New reply',
  url: 'https://app.example.com/posts/42#comment-7',
  data: { postId: 42, excerpt: 'Great point!', thread: { depth: 2, by: ['u-1', { id: 'u-2' }] } },
  actor: { id: 'u-1', name: 'Ana', avatarUrl: 'https://cdn.example.com/u-1.png' },
  groupKey: 'post:42'
}

async function jwtGateway (t: Parameters<typeof startGateway>[0], env: Record<string, string> = {}) {
  const bus = new FakeBus()
  const gateway = await startGateway(t, { bus, listen: false, env: { AUTH_MODE: 'jwt', AUTH_SECRET: SECRET, AUTH_AUDIENCE: AUDIENCE, ...env } })
  return { bus, app: gateway.app }
}

t.test('POST /api/notifications with a service token', async (t) => {
  const { bus, app } = await jwtGateway(t)
  const service = await serviceToken()

  t.test('202 once the bus took one notification per recipient, every field as sent, in one publish', async (t) => {
    const [published, calls] = [bus.published.length, bus.publishCalls]
    const response = await publish(app, service, reply)
    t.equal(response.statusCode, 202)
    const { notifications } = response.json<Accepted>()
    t.same(notifications.map(({ userId }) => userId), ['u-7f3a', 'u-90b1'], 'one per recipient, in the order given')
    t.ok(notifications.every(({ id }) => UUID.test(id)))
    t.equal(new Set(notifications.map(({ id }) => id)).size, 2, 'each its own id')
    t.equal(bus.publishCalls, calls + 1, 'all of them handed to Kafka in one publish')
    const sent = bus.published.slice(published)
    t.same(sent.map(({ id, userId }) => ({ id, userId })), notifications, 'the bus got what the answer names')
    for (const notification of sent) {
      const { recipients: _, ...content } = reply
      t.same({ ...notification, id: 'x', userId: 'x', createdAt: 'x' }, { ...content, id: 'x', userId: 'x', createdAt: 'x' }, `${notification.userId}'s carries every field as sent`)
      t.match(notification.createdAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
    }
    t.equal(sent[0]!.createdAt, sent[1]!.createdAt, 'one time for the whole request')
  })

  t.test('the recipients have it in their history, every field as sent, nested data included', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/api/notifications', headers: { authorization: `Bearer ${await idToken('u-90b1')}` } })
    t.equal(response.statusCode, 200)
    const [item] = response.json<{ items: Array<Notification & { read: boolean }> }>().items
    t.match(item, { ...reply, recipients: undefined, userId: 'u-90b1', read: false })
    t.same(item!.data, reply.data)
    t.same(item!.actor, reply.actor)
  })

  t.test('the least a notification needs: recipients, type, message; no actor is a system notification', async (t) => {
    const response = await publish(app, service, { recipients: ['u-1'], type: 'invoice.paid', message: 'Invoice 7 is paid.' })
    t.equal(response.statusCode, 202)
    const sent = bus.published.at(-1)!
    t.same(Object.keys(sent).sort(), ['actor', 'createdAt', 'id', 'message', 'type', 'userId'], 'absent fields stay absent')
    t.equal(sent.actor, null)
    const named = await publish(app, service, { recipients: ['u-1'], type: 'follow', message: 'x', actor: { id: '2' } })
    t.equal(named.statusCode, 202)
    t.same(bus.published.at(-1)!.actor, { id: '2', name: 'Bruno' }, 'an actor without a name: the directory\'s')
    await publish(app, service, { recipients: ['u-1'], type: 'follow', message: 'x', actor: { id: 'u-5' } })
    t.same(bus.published.at(-1)!.actor, { id: 'u-5', name: 'u-5' }, 'else the id')
  })

  t.test('1,000 recipients in one request are one publish of 1,000 records', async (t) => {
    const recipients = Array.from({ length: 1000 }, (_, i) => `user-${i}-${'x'.repeat(50)}`)
    const calls = bus.publishCalls
    const response = await publish(app, service, { recipients, type: 'digest.ready', message: 'Your weekly digest is ready.', data: { week: 48 } })
    t.equal(response.statusCode, 202)
    t.equal(response.json<Accepted>().notifications.length, 1000)
    t.equal(bus.publishCalls, calls + 1)
  })

  t.test('400 INVALID_BODY naming the field, and nothing published', async (t) => {
    const before = bus.published.length
    const cases: Array<[string, unknown, RegExp]> = [
      ['no recipients', { ...reply, recipients: [] }, /body\/recipients must NOT have fewer than 1 items/],
      ['a duplicate recipient', { ...reply, recipients: ['a', 'b', 'a'] }, /body\/recipients must NOT have duplicate items/],
      ['a recipient that is no id', { ...reply, recipients: ['a b'] }, /body\/recipients\/0 must match pattern/],
      ['a numeric recipient', { ...reply, recipients: [7] }, /body\/recipients\/0 must be string/],
      ['no type', { ...reply, type: undefined }, /body must have required property 'type'/],
      ['a type that is no lowercase name', { ...reply, type: 'CommentReply' }, /body\/type must match pattern/],
      ['no message', { ...reply, message: undefined }, /body must have required property 'message'/],
      ['a message over 1,000 characters', { ...reply, message: 'm'.repeat(1001) }, /body\/message must NOT have more than 1000 characters/],
      ['a title over 200 characters', { ...reply, title: 't'.repeat(201) }, /body\/title /],
      ['a javascript: url', { ...reply, url: 'javascript:alert(document.cookie)' }, /body\/url must match pattern/],
      ['a data: url', { ...reply, url: 'data:text/html,<script>alert(1)</script>' }, /body\/url must match pattern/],
      ['a vbscript: url', { ...reply, url: 'vbscript:msgbox(1)' }, /body\/url must match pattern/],
      ['a protocol-relative url', { ...reply, url: '//evil.example/phish' }, /body\/url must match pattern/],
      ['a backslash path that browsers read as another host', { ...reply, url: '/\\evil.example' }, /body\/url must match pattern/],
      ['an avatar that is a data: URL', { ...reply, actor: { id: 'u-1', avatarUrl: 'data:image/svg+xml,<svg onload=alert(1)>' } }, /body\/actor\/avatarUrl must match pattern/],
      ['data that is no object', { ...reply, data: 'text' }, /body\/data must be object/],
      ['data five levels deep', { ...reply, data: { a: { b: { c: { d: { e: 1 } } } } } }, /body\/data must nest objects and arrays at most 4 levels deep/],
      ['data over 4 KiB', { ...reply, data: { text: 'x'.repeat(4100) } }, /body\/data must be at most 4096 bytes as JSON/],
      ['data with 65 keys in all', { ...reply, data: { a: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, i])) } }, /body\/data must have at most 64 keys at all levels together/],
      ['a groupKey with a space', { ...reply, groupKey: 'post 42' }, /body\/groupKey must match pattern/],
      ['an actor without id', { ...reply, actor: { name: 'Ana' } }, /body\/actor must have required property 'id'/],
      ['an unknown field', { ...reply, priority: 'high' }, /body must NOT have additional properties \(priority\)/],
      ['userId instead of recipients', { ...reply, recipients: undefined, userId: 'u-1' }, /body must have required property 'recipients'/]
    ]
    for (const [what, payload, message] of cases) {
      const response = await publish(app, service, payload)
      t.equal(response.statusCode, 400, what)
      t.match(response.json(), { statusCode: 400, code: 'INVALID_BODY', message }, what)
    }
    t.equal(bus.published.length, before)
  })

  t.test('413: more than 1,000 recipients is TOO_MANY_RECIPIENTS, a body over 256 KiB is BODY_TOO_LARGE', async (t) => {
    const before = bus.published.length
    const tooMany = await publish(app, service, { ...reply, recipients: Array.from({ length: 1001 }, (_, i) => `u${i}`) })
    t.equal(tooMany.statusCode, 413)
    t.match(tooMany.json(), { statusCode: 413, code: 'TOO_MANY_RECIPIENTS', message: /body\/recipients must have at most 1000 recipients/ })
    const large = await publish(app, service, { ...reply, recipients: Array.from({ length: 1000 }, (_, i) => `${i}-${'r'.repeat(60)}`), title: 'x'.repeat(200_000) })
    t.equal(large.statusCode, 413)
    t.match(large.json(), { statusCode: 413, code: 'BODY_TOO_LARGE' })
    t.equal(bus.published.length, before)
  })

  t.test('Idempotency-Key: a retry gets the same notifications; the same key for another request is a conflict', async (t) => {
    const key = { 'idempotency-key': 'reply-7-1' }
    const first = await publish(app, service, reply, key)
    t.equal(first.statusCode, 202)
    t.match(first.json<Accepted>().notifications[0]!.id, /^[0-9a-f]{8}-[0-9a-f]{4}-8/, 'ids derived from the request: UUIDv8')
    const published = bus.published.length
    const again = await publish(app, service, { ...reply, recipients: [...reply.recipients].reverse() }, key)
    t.equal(again.statusCode, 202, 'the same request, recipients in another order')
    t.equal(again.headers['idempotent-replayed'], 'true')
    t.same(new Set(again.json<Accepted>().notifications.map(({ id }) => id)), new Set(first.json<Accepted>().notifications.map(({ id }) => id)), 'the same ids')
    t.equal(bus.published.length, published, 'nothing published again')
    const conflict = await publish(app, service, { ...reply, message: 'Something else.' }, key)
    t.equal(conflict.statusCode, 422)
    t.match(conflict.json(), { code: 'IDEMPOTENCY_CONFLICT', message: /idempotency-key/ })
    const otherService = await publish(app, await serviceToken('billing-backend'), reply, key)
    t.equal(otherService.statusCode, 202, 'keys are per service')
    t.notSame(otherService.json<Accepted>().notifications.map(({ id }) => id), first.json<Accepted>().notifications.map(({ id }) => id), 'another service: other ids')
    const badKey = await publish(app, service, reply, { 'idempotency-key': 'has space' })
    t.match({ status: badKey.statusCode, body: badKey.json() }, { status: 400, body: { code: 'INVALID_HEADER', message: /headers\/idempotency-key/ } })
  })

  t.test('a request that failed (503) and is retried with its key publishes the very same notifications', async (t) => {
    const key = { 'idempotency-key': 'reply-8-1' }
    bus.failWith = new KafkaUnavailableError('the broker is down')
    const failed = await publish(app, service, reply, key)
    bus.failWith = undefined
    t.equal(failed.statusCode, 503)
    t.match(failed.json(), { code: 'KAFKA_UNAVAILABLE' })
    t.equal(failed.headers['retry-after'], '1')
    const published = bus.published.length
    const retry = await publish(app, service, reply, key)
    t.equal(retry.statusCode, 202)
    const sent = bus.published.slice(published)
    t.same(sent.map(({ id, userId }) => ({ id, userId })), retry.json<Accepted>().notifications)
    const third = await publish(app, service, reply, key)
    t.same(third.json<Accepted>().notifications, retry.json<Accepted>().notifications, 'and a later duplicate names them too')
  })

  t.test('without a key, every request is new notifications', async (t) => {
    const ids = async (): Promise<string[]> => (await publish(app, service, reply)).json<Accepted>().notifications.map(({ id }) => id)
    const [a, b] = [await ids(), await ids()]
    t.equal(new Set([...a, ...b]).size, 4)
  })
})

t.test('only service tokens publish: a user token is 403 before its body is read; no token is 401', async (t) => {
  const { bus, app } = await jwtGateway(t)
  const user = await idToken('u-7f3a')
  for (const [what, payload] of [['a good body', reply], ['a bad body', { nonsense: true }], ['no body', undefined]] as const) {
    const response = await publish(app, user, payload)
    t.equal(response.statusCode, 403, what)
    t.match(response.json(), { statusCode: 403, code: 'FORBIDDEN', message: /service token/ }, what)
  }
  const anonymous = await publish(app, undefined, reply)
  t.match({ status: anonymous.statusCode, body: anonymous.json() }, { status: 401, body: { code: 'UNAUTHORIZED' } })
  t.equal(bus.published.length, 0)
})

t.test('RATE_LIMIT_PER_SERVICE counts notifications, per service', async (t) => {
  const { bus, app } = await jwtGateway(t, { RATE_LIMIT_PER_SERVICE: '5' })
  const service = await serviceToken()
  const to = (count: number, prefix = 'u') => ({ ...reply, recipients: Array.from({ length: count }, (_, i) => `${prefix}${i}`) })
  t.equal((await publish(app, service, to(3))).statusCode, 202, '3 of 5')
  t.equal((await publish(app, service, to(2, 'v'))).statusCode, 202, '5 of 5')
  const refused = await publish(app, service, to(1, 'w'))
  t.equal(refused.statusCode, 429, 'a 6th notification')
  t.match(refused.json(), { code: 'RATE_LIMITED', message: /at most 5 a minute/ })
  t.ok(Number(refused.headers['retry-after']) >= 1 && Number(refused.headers['retry-after']) <= 60, 'Retry-After: the rest of the window')
  t.equal((await publish(app, await serviceToken('billing-backend'), to(5))).statusCode, 202, 'another service has a budget of its own')
  const larger = await publish(app, await serviceToken('newsletter'), to(6))
  t.equal(larger.statusCode, 413, 'more recipients than the whole budget can never pass')
  t.match(larger.json(), { code: 'TOO_MANY_RECIPIENTS', message: /RATE_LIMIT_PER_SERVICE: 5/ })
  t.equal(bus.published.length, 10)
})

t.test('dev mode: a service token the gateway signs for a loopback caller publishes; a user token does not', async (t) => {
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false })
  const signed = await app.inject({ method: 'POST', url: '/api/sessions', payload: { service: 'demo-backend' } })
  const service = signed.json<{ token: string }>().token
  t.equal((await publish(app, service, { recipients: ['1', 'u-7f3a'], type: 'comment.reply', message: 'hi' })).statusCode, 202, 'to anyone, listed or not')
  const user = (await app.inject({ method: 'POST', url: '/api/sessions', payload: { userId: '1' } })).json<{ token: string }>().token
  t.equal((await publish(app, user, reply)).statusCode, 403)
  t.equal(bus.published.length, 2)
})

t.test('metrics count requests by outcome and notifications accepted', async (t) => {
  const { app } = await jwtGateway(t)
  const service = await serviceToken()
  await publish(app, service, reply)
  await publish(app, service, { ...reply, type: 'Bad' })
  await publish(app, await idToken('u-1'), reply)
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /notify_publishes_total\{outcome="accepted"\} 1/)
  t.match(metrics, /notify_publishes_total\{outcome="INVALID_BODY"\} 1/)
  t.match(metrics, /notify_publishes_total\{outcome="FORBIDDEN"\} 1/)
  t.match(metrics, /notify_published_notifications_total 2/)
})
