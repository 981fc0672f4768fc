import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { KafkaUnavailableError } from '../../server/kafka/errors.js'
import { FeedClient, signIn, type ErrorBody } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

/** A catch-up of 600 frames over injectWS, paced by the send bound. */
const CATCH_UP_BOUND_MS = 60_000
const BODY_LIMIT = 16 * 1024

interface Notification { id: string, userId: string, actor: { id: string, name: string } }

function post (app: FastifyInstance, url: string, token: string | undefined, payload: unknown, options: Partial<InjectOptions> = {}) {
  const headers = { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...options.headers as Record<string, string> }
  return app.inject({ ...options, method: 'POST', url, headers, payload: payload as string })
}

function follow (app: FastifyInstance, token: string | undefined, followeeId: string, headers: Record<string, string> = {}) {
  return post(app, '/api/follows', token, { followeeId }, { headers })
}

/** The raw JSON text, sent as is (for bodies a serializer would not produce). */
function postRaw (app: FastifyInstance, url: string, token: string, body: string, headers: Record<string, string> = {}) {
  return post(app, url, token, body, { headers: { 'content-type': 'application/json', ...headers } })
}

function assertRetryAfter (t: Test, header: unknown): void {
  const seconds = Number(header)
  t.ok(Number.isInteger(seconds) && seconds >= 1 && seconds <= 60, `Retry-After is a number of seconds within the minute (${String(header)})`)
}

t.test('RATE_LIMIT_PER_USER: POST /api/follows', async (t) => {
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false, env: { RATE_LIMIT_PER_USER: '3' } })
  const [emma, bruno] = [await signIn(app, '1'), await signIn(app, '2')]

  for (let i = 1; i <= 3; i++) t.equal((await follow(app, emma, '2')).statusCode, 202, `Emma's follow #${i}`)
  const refused = await follow(app, emma, '3')
  t.equal(refused.statusCode, 429, 'the 4th in the minute is refused')
  t.match(refused.json(), { statusCode: 429, error: 'Too Many Requests', code: 'RATE_LIMITED', message: /at most 3 a minute/ })
  assertRetryAfter(t, refused.headers['retry-after'])
  t.equal((await follow(app, emma, '4')).statusCode, 429, 'and so is the 5th')
  t.equal(bus.published.filter((notification) => notification.actor?.id === '1').length, 3, 'nothing was published for the refused ones')
  t.notOk(bus.published.some((notification) => notification.userId !== '2'), 'no follow of Rick or Lena went out')

  for (let i = 1; i <= 3; i++) t.equal((await follow(app, bruno, '1')).statusCode, 202, `Bruno is not affected (#${i})`)
  t.equal((await follow(app, bruno, '1')).statusCode, 429, 'and has a budget of his own')
  t.equal((await app.inject({ method: 'GET', url: '/api/notifications', headers: { authorization: `Bearer ${emma}` } })).statusCode, 200, 'reading history is not a POST: not limited')
})

t.test('RATE_LIMIT_PER_USER: POST /api/notifications/read', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { RATE_LIMIT_PER_USER: '3' } })
  const [emma, bruno] = [await signIn(app, '1'), await signIn(app, '2')]
  for (let i = 1; i <= 3; i++) t.equal((await post(app, '/api/notifications/read', emma, { upTo: '0' })).statusCode, 200, `read #${i}`)
  const refused = await post(app, '/api/notifications/read', emma, { upTo: '0' })
  t.equal(refused.statusCode, 429)
  t.match(refused.json(), { statusCode: 429, code: 'RATE_LIMITED' })
  assertRetryAfter(t, refused.headers['retry-after'])
  t.equal((await post(app, '/api/notifications/read', bruno, { upTo: '0' })).statusCode, 200, 'another user is not affected')
})

t.test('RATE_LIMIT_PER_USER does not apply to service tokens (backends)', async (t) => {
  const { SignJWT } = await import('jose')
  const secret = 'the-identity-service-secret-32-characters'
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false, env: { AUTH_MODE: 'jwt', AUTH_SECRET: secret, RATE_LIMIT_PER_USER: '3', AUTH_ALLOW_ANY_AUDIENCE: '1' } })
  const service = await new SignJWT({ scope: 'notify:service' }).setProtectedHeader({ alg: 'HS256' }).setSubject('billing-backend')
    .setExpirationTime('1h').sign(new TextEncoder().encode(secret))
  for (let i = 1; i <= 5; i++) {
    t.equal((await post(app, '/api/follows', service, { followeeId: '1', followerId: String(2 + (i % 3)) })).statusCode, 202, `service follow #${i}`)
  }
  t.equal(bus.published.length, 5)
})

t.test('RATE_LIMIT_PER_IP: per client address, before authentication', async (t) => {
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false, env: { RATE_LIMIT_PER_IP: '3' } })
  const from = (remoteAddress: string, headers: Record<string, string> = {}) =>
    post(app, '/api/sessions', undefined, { userId: '1' }, { remoteAddress, headers })

  for (let i = 1; i <= 3; i++) t.equal((await from('10.0.0.1')).statusCode, 201, `sign-in #${i} from 10.0.0.1`)
  const refused = await from('10.0.0.1')
  t.equal(refused.statusCode, 429, 'the 4th POST /api/sessions from the address')
  t.match(refused.json(), { statusCode: 429, code: 'RATE_LIMITED', message: /from this address/ })
  assertRetryAfter(t, refused.headers['retry-after'])
  t.equal((await from('10.0.0.2')).statusCode, 201, 'a second address is not affected')
  t.equal((await from('10.0.0.1', { 'x-forwarded-for': '10.9.9.9' })).statusCode, 429, 'X-Forwarded-For is not trusted (TRUST_PROXY off)')

  const token = (await from('10.0.0.2')).json<{ token: string }>().token
  t.equal((await post(app, '/api/follows', token, { followeeId: '2' }, { remoteAddress: '10.0.0.1' })).statusCode, 429, 'the address\'s budget covers follows too')

  for (let i = 1; i <= 3; i++) {
    const response = await post(app, '/api/follows', 'forged', { followeeId: '2' }, { remoteAddress: '10.0.0.3' })
    t.equal(response.statusCode, 401, `a forged token #${i}`)
  }
  const flood = await post(app, '/api/follows', 'forged', { followeeId: '2' }, { remoteAddress: '10.0.0.3' })
  t.equal(flood.statusCode, 429, 'a flood of forged tokens on /api/follows is limited too')
  t.equal(bus.published.length, 0)
})

t.test('RATE_LIMIT_PER_IP on POST /api/notifications/read counts forged tokens too', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { RATE_LIMIT_PER_IP: '3' } })
  const statuses: number[] = []
  for (let i = 1; i <= 4; i++) {
    statuses.push((await post(app, '/api/notifications/read', 'forged', { upTo: '0' }, { remoteAddress: '10.0.0.4' })).statusCode)
  }
  t.same(statuses.slice(0, 3), [401, 401, 401])
  // Regression: authenticate ran as a plugin-level hook, before the route's per-address limit.
  t.equal(statuses[3], 429, 'the 4th from the address is limited, as on /api/follows')
})

// Regression: each IPv6 address had a budget of its own, and one host picks
// any of the 2^64 addresses of its /64.
t.test('RATE_LIMIT_PER_IP counts an IPv6 client by its /64', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { RATE_LIMIT_PER_IP: '2' } })
  const from = (remoteAddress: string) => post(app, '/api/sessions', undefined, { userId: '1' }, { remoteAddress })
  t.equal((await from('2001:db8:1:2::1')).statusCode, 201)
  t.equal((await from('2001:db8:1:2::2')).statusCode, 201)
  t.equal((await from('2001:db8:1:2:abcd::3')).statusCode, 429, 'a third address of the same /64 shares the budget')
  t.equal((await from('2001:db8:1:3::1')).statusCode, 201, 'the next /64 is another client')
})

t.test('WS_MAX_CONNECTIONS_PER_USER: the 3rd socket of a user is closed with 4029', async (t) => {
  const { app, url, services } = await startGateway(t, { bus: new FakeBus(), env: { WS_MAX_CONNECTIONS_PER_USER: '2' } })
  const [emma, bruno] = [await signIn(app, '1'), await signIn(app, '2')]
  const first = await FeedClient.open(t, url, `/ws?token=${emma}`)
  const second = await FeedClient.open(t, url, `/ws?token=${emma}`)
  t.match(await first.ready, { type: 'ready' })
  t.match(await second.ready, { type: 'ready' })

  const third = await FeedClient.open(t, url, `/ws?token=${emma}`)
  const closed = await third.closed
  t.equal(closed.code, 4029)
  t.match(closed.reason, /too many connections for this user/)
  t.same(third.frames, [], 'no frame went to the refused socket')
  t.equal(services.hub.connectionsOf('1'), 2)
  t.match(await (await FeedClient.open(t, url, `/ws?token=${bruno}`)).ready, { type: 'ready', user: { id: '2' } }, 'another user is not affected')

  first.socket.close(1000)
  await first.closed
  await eventually('the hub lets go of the closed socket', () => services.hub.connectionsOf('1') === 1)
  const fourth = await FeedClient.open(t, url, `/ws?token=${emma}`)
  t.match(await fourth.ready, { type: 'ready', user: { id: '1' } }, 'a socket after closing one is accepted')
  t.equal(services.hub.connectionsOf('1'), 2)
})

t.test('WS_MAX_CONNECTIONS_PER_IP: the 3rd socket from an address is closed with 4029', async (t) => {
  const { app, url, services } = await startGateway(t, { bus: new FakeBus(), env: { WS_MAX_CONNECTIONS_PER_IP: '2' } })
  const [emma, bruno, rick] = [await signIn(app, '1'), await signIn(app, '2'), await signIn(app, '3')]
  const first = await FeedClient.open(t, url, `/ws?token=${emma}`)
  await first.ready
  await (await FeedClient.open(t, url, `/ws?token=${bruno}`)).ready

  const third = await FeedClient.open(t, url, `/ws?token=${rick}`)
  const closed = await third.closed
  t.equal(closed.code, 4029)
  t.match(closed.reason, /too many connections from this address/)
  t.equal(services.hub.connectionsOf('3'), 0)

  const elsewhere = await FeedClient.open(t, url, `/ws?token=${rick}`, { localAddress: '127.0.0.2' })
  t.match(await elsewhere.ready, { type: 'ready', user: { id: '3' } }, 'another address is not affected')

  first.socket.close(1000)
  await first.closed
  await eventually('the hub lets go of the closed socket', () => services.hub.connectionsOf('1') === 0)
  const fourth = await FeedClient.open(t, url, `/ws?token=${rick}`)
  t.match(await fourth.ready, { type: 'ready', user: { id: '3' } }, 'a socket after closing one is accepted')
})

t.test('Origin on /ws', async (t) => {
  t.test('default: same origin, or none', async (t) => {
    const { app, url, services } = await startGateway(t, { bus: new FakeBus() })
    const emma = await signIn(app, '1')
    for (const origin of ['https://evil.example', 'null', url.replace(/:\d+$/, ':1'), url.replace('http:', 'https:').replace(/:\d+$/, ':8443'), `${url}.evil.example`]) {
      const refused = await FeedClient.upgrade(t, url, `/ws?token=${emma}`, { headers: { origin } })
      t.equal(refused.opened, false, `${origin}: no socket`)
      if (!refused.opened) {
        t.equal(refused.status, 403, `${origin}: 403 before the upgrade`)
        t.match(refused.body, { statusCode: 403, code: 'FORBIDDEN', message: /origin/ })
      }
    }
    t.equal(services.hub.connectionCount, 0)
    t.match(await (await FeedClient.open(t, url, `/ws?token=${emma}`, { headers: { origin: url } })).ready, { type: 'ready' }, `the gateway's own origin ${url}`)
    t.match(await (await FeedClient.open(t, url, `/ws?token=${emma}`)).ready, { type: 'ready' }, 'no Origin (not a browser)')
  })

  t.test('ALLOWED_ORIGINS=https://app.example: only that origin', async (t) => {
    const { app, url } = await startGateway(t, { bus: new FakeBus(), env: { ALLOWED_ORIGINS: 'https://app.example' } })
    const emma = await signIn(app, '1')
    t.match(await (await FeedClient.open(t, url, `/ws?token=${emma}`, { headers: { origin: 'https://app.example' } })).ready, { type: 'ready' })
    for (const origin of ['https://evil.example', url, 'http://app.example', 'https://app.example.evil.example']) {
      const refused = await FeedClient.upgrade(t, url, `/ws?token=${emma}`, { headers: { origin } })
      t.match(refused, { opened: false, status: 403, body: { code: 'FORBIDDEN' } }, origin)
    }
    t.match(await (await FeedClient.open(t, url, `/ws?token=${emma}`)).ready, { type: 'ready' }, 'no Origin still works')
  })

  t.test('WS_ALLOWED_ORIGINS=* (ALLOWED_ORIGINS\'s old name): any origin', async (t) => {
    const { app, url } = await startGateway(t, { bus: new FakeBus(), env: { WS_ALLOWED_ORIGINS: '*' } })
    const emma = await signIn(app, '1')
    t.match(await (await FeedClient.open(t, url, `/ws?token=${emma}`, { headers: { origin: 'https://evil.example' } })).ready, { type: 'ready' })
  })
})

t.test('client frames on /ws', async (t) => {
  const { app, url, services } = await startGateway(t, { bus: new FakeBus() })
  const emma = await signIn(app, '1')
  const cases: Array<[string, string | Buffer, number]> = [
    ['a text frame', 'hello', 4500],
    ['a JSON text frame', JSON.stringify({ type: 'subscribe', userId: '2' }), 4500],
    ['an empty text frame', '', 4500],
    ['a binary frame', Buffer.from([0, 1, 2, 3]), 4500],
    ['a frame of exactly 1 KiB', 'x'.repeat(1024), 4500],
    ['a frame of 1 KiB + 1', 'x'.repeat(1025), 1009],
    ['a 64 KiB binary frame', Buffer.alloc(64 * 1024), 1009]
  ]
  for (const [what, data, code] of cases) {
    const feed = await FeedClient.open(t, url, `/ws?token=${emma}`)
    await feed.ready
    feed.socket.send(data)
    const closed = await feed.closed
    t.equal(closed.code, code, `${what}: closed with ${code}`)
  }
  await eventually('the hub lets go of every closed socket', () => services.hub.connectionsOf('1') === 0)

  const feed = await FeedClient.open(t, url, `/ws?token=${emma}`)
  await feed.ready
  const pong = new Promise<string>((resolve) => feed.socket.once('pong', (data) => resolve(String(data))))
  feed.socket.ping('are you there')
  t.equal(await pong, 'are you there', 'a client\'s ping is a control frame, answered with a pong, not a message')
  const sent = await follow(app, await signIn(app, '2'), '1')
  await feed.until('the next notification', () => feed.frames.some((frame) => frame.type === 'notification' && frame.notification.id === sent.json<{ notification: Notification }>().notification.id))
  t.pass('the socket stays open after a ping')
})

t.test('a client catching up is paced by the send bound, not closed as slow by its own replay', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { WS_MAX_BUFFERED_BYTES: '65536' } })
  const [emma, bruno] = [await signIn(app, '1'), await signIn(app, '2')]
  const missed = 600
  const statuses = new Set<number>()
  for (let i = 0; i < missed; i++) statuses.add((await follow(app, emma, '2')).statusCode)
  t.same([...statuses], [202], `${missed} follows accepted while Bruno was away`)
  // injectWS's in-memory transport drains only between ticks, like a socket whose kernel buffer is full for a moment.
  const feed = await FeedClient.inject(t, app, `/ws?token=${bruno}&since=0`)
  const end = await Promise.race([
    feed.until('synced', () => feed.frames.some((frame) => frame.type === 'synced'), CATCH_UP_BOUND_MS).then(() => 'synced'),
    feed.closed.then(({ code }) => `closed with ${code}`)
  ])
  const outcome = { end, replayed: feed.frames.filter((frame) => frame.type === 'notification').length }
  // Regression: a whole page (500 frames, ~175 KB) went out with sendNow before anything drained,
  // and the client was closed 4008 by its own replay after ~400 frames.
  t.same(outcome, { end: 'synced', replayed: missed }, `the replay of ${missed} runs to synced`)
})

t.test('body, JSON and string limits', async (t) => {
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false })
  const emma = await signIn(app, '1')

  t.test('413 past 16 KiB; a body of exactly 16 KiB is read', async (t) => {
    const body = JSON.stringify({ followeeId: '2' })
    const atLimit = await postRaw(app, '/api/follows', emma, body + ' '.repeat(BODY_LIMIT - body.length))
    t.equal(atLimit.statusCode, 202, 'exactly 16 KiB')
    const over = await postRaw(app, '/api/follows', emma, body + ' '.repeat(BODY_LIMIT - body.length + 1))
    t.equal(over.statusCode, 413, '16 KiB + 1')
    t.match(over.json(), { statusCode: 413, code: 'BODY_TOO_LARGE' })
    const huge = await postRaw(app, '/api/follows', emma, JSON.stringify({ followeeId: '2', padding: 'x'.repeat(1024 * 1024) }))
    t.equal(huge.statusCode, 413, '1 MiB')
    const lying = await postRaw(app, '/api/follows', emma, body, { 'content-length': String(BODY_LIMIT * 4) })
    t.match({ status: lying.statusCode, code: lying.json<ErrorBody>().code }, { status: /^(400|413)$/, code: /^(INVALID_BODY|BODY_TOO_LARGE)$/ }, 'a Content-Length that lies')
  })

  t.test('deeply nested JSON inside the limit is a 400, not a 500', async (t) => {
    for (const depth of [5_000, 8_000]) {
      const nested = '['.repeat(depth) + ']'.repeat(depth)
      for (const [url, body] of [
        ['/api/follows', nested],
        ['/api/follows', `{"followeeId":"2","x":${nested}}`],
        ['/api/follows', `{"followeeId":${nested}}`],
        ['/api/notifications/read', `{"ids":${nested}}`],
        ['/api/sessions', `{"userId":${nested}}`]
      ] as const) {
        const response = await postRaw(app, url, emma, body)
        t.equal(response.statusCode, 400, `${url}, ${depth} levels`)
        t.match(response.json(), { statusCode: 400, code: 'INVALID_BODY', message: String })
      }
    }
    const objects = '{"a":'.repeat(2_500) + '1' + '}'.repeat(2_500)
    const response = await postRaw(app, '/api/follows', emma, `{"followeeId":"2","x":${objects}}`)
    t.equal(response.statusCode, 400, '2,500 levels of objects')
  })

  t.test('string lengths and id patterns', async (t) => {
    const published = bus.published.length
    const cases: Array<[string, string, unknown, number, string]> = [
      ['followeeId of 65 chars', '/api/follows', { followeeId: 'x'.repeat(65) }, 400, 'INVALID_BODY'],
      ['followeeId of 64 chars passes the pattern (unknown user)', '/api/follows', { followeeId: 'x'.repeat(64) }, 404, 'UNKNOWN_USER'],
      ['followeeId of 20,000 chars is cut by the body limit', '/api/follows', { followeeId: 'x'.repeat(20_000) }, 413, 'BODY_TOO_LARGE'],
      ['followeeId with a slash', '/api/follows', { followeeId: '../2' }, 400, 'INVALID_BODY'],
      ['followeeId with a NUL', '/api/follows', { followeeId: '2\u0000' }, 400, 'INVALID_BODY'],
      ['followeeId with a newline', '/api/follows', { followeeId: '2\n' }, 400, 'INVALID_BODY'],
      ['followeeId with unicode digits', '/api/follows', { followeeId: '٢' }, 400, 'INVALID_BODY'],
      ['an empty followeeId', '/api/follows', { followeeId: '' }, 400, 'INVALID_BODY'],
      ['userId of 65 chars', '/api/sessions', { userId: 'x'.repeat(65) }, 400, 'INVALID_BODY'],
      ['upTo of 16 digits', '/api/notifications/read', { upTo: '1'.repeat(16) }, 400, 'INVALID_BODY'],
      ['upTo negative', '/api/notifications/read', { upTo: '-1' }, 400, 'INVALID_BODY'],
      ['ids not UUIDs', '/api/notifications/read', { ids: ['1'] }, 400, 'INVALID_BODY'],
      ['501 ids', '/api/notifications/read', { ids: Array.from({ length: 501 }, () => 'abcdef01-89ab-7def-8123-456789abcdef') }, 413, 'BODY_TOO_LARGE'],
      ['no ids', '/api/notifications/read', { ids: [] }, 400, 'INVALID_BODY'],
      ['both upTo and ids', '/api/notifications/read', { upTo: '1', ids: ['01234567-89ab-7def-8123-456789abcdef'] }, 400, 'INVALID_BODY']
    ]
    for (const [what, url, payload, status, code] of cases) {
      const response = await post(app, url, emma, payload)
      t.equal(response.statusCode, status, what)
      t.match(response.json(), { statusCode: status, code, message: String }, what)
    }
    for (const [what, query] of [['limit=0', '?limit=0'], ['limit=101', '?limit=101'], ['limit=abc', '?limit=abc'], ['before of 16 digits', `?before=${'9'.repeat(16)}`], ['an unknown parameter', '?userId=2']]) {
      const response = await app.inject({ method: 'GET', url: `/api/notifications${query!}`, headers: { authorization: `Bearer ${emma}` } })
      t.equal(response.statusCode, 400, what!)
      t.match(response.json(), { statusCode: 400, code: 'INVALID_QUERY' }, what!)
    }
    t.equal(bus.published.length, published, 'nothing was published')
  })

  t.test('the most ids a read may name (100) fit in a body; one more is a 400 naming the field', async (t) => {
    const ids = Array.from({ length: 100 }, () => 'abcdef01-89ab-7def-8123-456789abcdef')
    const response = await post(app, '/api/notifications/read', emma, { ids })
    t.equal(response.statusCode, 200, `100 ids are ${JSON.stringify({ ids }).length} bytes`)
    const tooMany = await post(app, '/api/notifications/read', emma, { ids: [...ids, ids[0]] })
    t.equal(tooMany.statusCode, 400)
    t.match(tooMany.json(), { code: 'INVALID_BODY', message: /ids/ })
  })
})

t.test('Idempotency-Key', async (t) => {
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false })
  const [emma, bruno] = [await signIn(app, '1'), await signIn(app, '2')]

  t.test('a malformed key is 400 INVALID_HEADER, and nothing is published', async (t) => {
    const published = bus.published.length
    for (const [what, key] of [
      ['256 characters', 'k'.repeat(256)],
      ['a space', 'my key'],
      ['empty', ''],
      ['non-ASCII', 'clé'],
      ['a tab', 'a\tb']
    ] as const) {
      const response = await follow(app, emma, '2', { 'idempotency-key': key })
      t.equal(response.statusCode, 400, what)
      t.match(response.json(), { statusCode: 400, code: 'INVALID_HEADER', message: /idempotency-key/ }, what)
    }
    t.equal((await follow(app, emma, '2', { 'idempotency-key': 'k'.repeat(255) })).statusCode, 202, '255 characters is fine')
    t.equal(bus.published.length, published + 1)
  })

  t.test('a key reused for another followee is 422 IDEMPOTENCY_CONFLICT', async (t) => {
    const first = await follow(app, emma, '2', { 'idempotency-key': 'conflict-1' })
    t.equal(first.statusCode, 202)
    const published = bus.published.length
    const reused = await follow(app, emma, '3', { 'idempotency-key': 'conflict-1' })
    t.equal(reused.statusCode, 422)
    t.match(reused.json(), { statusCode: 422, code: 'IDEMPOTENCY_CONFLICT', message: /idempotency-key/ })
    t.equal(bus.published.length, published, 'nothing was published')
  })

  t.test('keys belong to their user: Bruno reusing Emma\'s key gets his own follow', async (t) => {
    const emmas = (await follow(app, emma, '3', { 'idempotency-key': 'shared-key' })).json<{ notification: Notification }>().notification
    const response = await follow(app, bruno, '3', { 'idempotency-key': 'shared-key' })
    t.equal(response.statusCode, 202)
    const brunos = response.json<{ notification: Notification }>().notification
    t.not(brunos.id, emmas.id)
    t.same(brunos.actor, { id: '2', name: 'Bruno' })
    t.equal(response.headers['idempotent-replayed'], undefined)
  })

  t.test('a retry after a 503 publishes one notification, and every later retry gets that one', async (t) => {
    const published = bus.published.length
    bus.failWith = new KafkaUnavailableError('down')
    t.teardown(() => { bus.failWith = undefined })
    const failed = await follow(app, emma, '4', { 'idempotency-key': 'retry-after-503' })
    t.equal(failed.statusCode, 503)
    t.match(failed.json(), { statusCode: 503, code: 'KAFKA_UNAVAILABLE' })
    t.equal(failed.headers['retry-after'], '1')
    t.equal(bus.published.length, published)
    bus.failWith = undefined

    const retry = await follow(app, emma, '4', { 'idempotency-key': 'retry-after-503' })
    t.equal(retry.statusCode, 202)
    const notification = retry.json<{ notification: Notification }>().notification
    t.match(notification, { userId: '4', actor: { id: '1', name: 'Emma' } })
    t.equal(bus.published.filter((sent) => sent.id === notification.id).length, 1, 'published once')

    const again = await follow(app, emma, '4', { 'idempotency-key': 'retry-after-503' })
    t.equal(again.statusCode, 202)
    t.equal(again.headers['idempotent-replayed'], 'true')
    t.same(again.json(), retry.json(), 'the same notification')
    t.equal(bus.published.length, published + 1, 'nothing was published twice')
  })

  t.test('concurrent retries with one key publish once', async (t) => {
    const published = bus.published.length
    const answers = await Promise.all(Array.from({ length: 10 }, () => follow(app, bruno, '4', { 'idempotency-key': 'concurrent' })))
    t.ok(answers.every((answer) => answer.statusCode === 202))
    t.equal(new Set(answers.map((answer) => answer.json<{ notification: Notification }>().notification.id)).size, 1)
    t.equal(bus.published.length, published + 1)
  })
})

t.test('WS_MAX_CONNECTIONS_PER_IP counts an IPv6 client by its /64', async (t) => {
  const { app, url } = await startGateway(t, { bus: new FakeBus(), env: { WS_MAX_CONNECTIONS_PER_IP: '2', TRUST_PROXY: '127.0.0.1' } })
  const [emma, bruno, rick] = [await signIn(app, '1'), await signIn(app, '2'), await signIn(app, '3')]
  const from = (token: string, client: string) => FeedClient.open(t, url, `/ws?token=${token}`, { headers: { 'x-forwarded-for': client } })
  await (await from(emma, '2001:db8:1:2::1')).ready
  await (await from(bruno, '2001:db8:1:2::2')).ready
  const third = await from(rick, '2001:db8:1:2:ffff::3')
  const outcome = await Promise.race([third.closed.then(({ code }) => code), third.ready.then(() => 'ready')])
  t.equal(outcome, 4029, 'a third address of the same /64 is over the limit')
  t.match(await (await from(rick, '2001:db8:1:3::1')).ready, { type: 'ready' }, 'the next /64 is another client')
})

t.test('TRUST_PROXY: behind the named proxy, the client address comes from X-Forwarded-For', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { RATE_LIMIT_PER_IP: '1', TRUST_PROXY: '10.0.0.1' } })
  const via = (remoteAddress: string, client: string) =>
    post(app, '/api/sessions', undefined, { userId: '1' }, { remoteAddress, headers: { 'x-forwarded-for': client } })
  t.equal((await via('10.0.0.1', '192.0.2.1')).statusCode, 201, 'a first client through the proxy')
  t.equal((await via('10.0.0.1', '192.0.2.2')).statusCode, 201, 'a second client through the proxy has its own budget')
  t.equal((await via('10.0.0.1', '192.0.2.1')).statusCode, 429, 'the first client again is limited')
  t.equal((await via('10.0.0.9', '192.0.2.3')).statusCode, 201, 'a peer that is not the proxy is itself the client')
  t.equal((await via('10.0.0.9', '192.0.2.4')).statusCode, 429, 'and cannot pick another address with the header')
})
