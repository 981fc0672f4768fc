import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'
import { FeedClient, signIn } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'

const SECRET = 'the-gateway-secret-for-auth-tests-32-chars'
const OTHER_SECRET = 'somebody-elses-secret-also-32-characters-long'
const DEV_ISSUER = 'kafka-notify-dev'
const ISSUER = 'https://id.example.com/'
const AUDIENCE = 'kafka-notify'

interface Item { id: string, userId: string, cursor: string, read: boolean }
interface Page { items: Item[], nextCursor: string | null, unread: number }

const now = (): number => Math.floor(Date.now() / 1000)
const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

/** Claims as a test writes them: `undefined` leaves a claim out. */
type Claims = Record<string, unknown>

async function hs256 (secret: string, claims: Claims, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(secret))
}

/** A dev-mode token, as POST /api/sessions would sign it, with claims overridden. */
function devToken (claims: Claims, secret = SECRET): Promise<string> {
  return hs256(secret, { sub: '1', iss: DEV_ISSUER, iat: now(), exp: now() + 600, ...claims })
}

/** A token of the operator's identity service (AUTH_MODE=jwt), with claims overridden. */
function idToken (claims: Claims, secret = SECRET): Promise<string> {
  return hs256(secret, { sub: '4', iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 600, ...claims })
}

/** Replaces the character at `index` with another one of the base64url alphabet. */
function flip (text: string, index: number): string {
  const char = text[index] === 'A' ? 'B' : 'A'
  return text.slice(0, index) + char + text.slice(index + 1)
}

/** The same token with one character of its signature (part 2) or its payload (part 1) changed. */
function tamper (token: string, part: 1 | 2): string {
  const parts = token.split('.')
  parts[part] = flip(parts[part]!, Math.floor(parts[part]!.length / 2))
  return parts.join('.')
}

/** Keeps the header and signature, swaps in another payload: what an attacker changing `sub` does. */
function reclaim (token: string, claims: Claims): string {
  const [header, , signature] = token.split('.')
  return `${header!}.${base64url(claims)}.${signature!}`
}

/** `alg: none`, unsigned (and, as a variant, with a real signature left on). */
function unsigned (claims: Claims, signature = ''): string {
  return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.${signature}`
}

function follow (app: FastifyInstance, token: string | undefined, payload: Record<string, unknown> = { followeeId: '2' }) {
  return app.inject({
    method: 'POST',
    url: '/api/follows',
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    payload
  })
}

function history (app: FastifyInstance, token: string | undefined, query = '?limit=100') {
  return app.inject({ method: 'GET', url: `/api/notifications${query}`, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
}

function markRead (app: FastifyInstance, token: string | undefined, payload: Record<string, unknown>) {
  return app.inject({ method: 'POST', url: '/api/notifications/read', headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, payload })
}

/** Every route a token opens, refused with `status`/`code` for `token`; nothing published, read or connected. */
async function assertRefusedEverywhere (t: Test, gateway: Gateway, bus: FakeBus, token: string | undefined, code: string, status = 401): Promise<void> {
  const { app, url, services } = gateway
  const published = bus.published.length
  const expected = { statusCode: status, code, message: String }

  const followed = await follow(app, token)
  t.equal(followed.statusCode, status, 'POST /api/follows')
  t.match(followed.json(), expected, 'POST /api/follows body')

  const listed = await history(app, token)
  t.equal(listed.statusCode, status, 'GET /api/notifications')
  t.match(listed.json(), expected, 'GET /api/notifications body')
  t.notOk('items' in listed.json<object>(), 'no items in the answer')

  const read = await markRead(app, token, { upTo: '999999' })
  t.equal(read.statusCode, status, 'POST /api/notifications/read')
  t.match(read.json(), expected, 'POST /api/notifications/read body')

  const query = token === undefined ? '' : `?token=${encodeURIComponent(token)}`
  const viaQuery = await FeedClient.upgrade(t, url, `/ws${query}`)
  t.equal(viaQuery.opened, false, 'GET /ws?token=: no socket')
  if (!viaQuery.opened) {
    t.equal(viaQuery.status, status, 'GET /ws?token=: refused with an HTTP answer before the upgrade')
    t.match(viaQuery.body, expected, 'GET /ws?token= body')
  }
  if (token !== undefined) {
    const viaHeader = await FeedClient.upgrade(t, url, '/ws', { headers: { authorization: `Bearer ${token}` } })
    t.equal(viaHeader.opened, false, 'GET /ws with Authorization: no socket')
    if (!viaHeader.opened) {
      t.equal(viaHeader.status, status, 'GET /ws with Authorization: refused before the upgrade')
      t.match(viaHeader.body, expected, 'GET /ws with Authorization body')
    }
  }
  t.equal(services.hub.connectionCount, 0, 'no socket reached the hub')
  t.equal(bus.published.length, published, 'nothing was published')
}

t.test('dev mode: every route refuses a missing, forged or foreign token', async (t) => {
  const bus = new FakeBus()
  const gateway = await startGateway(t, { bus, env: { AUTH_SECRET: SECRET } })
  const { app } = gateway
  const emma = await signIn(app, '1')
  const bruno = await signIn(app, '2')
  // Something to read, so a refused read or listing would have something to leak or change.
  for (const token of [emma, emma]) t.equal((await follow(app, token, { followeeId: '2' })).statusCode, 202)
  const brunoUnread = (await history(app, bruno)).json<Page>().unread
  t.equal(brunoUnread, 2)

  const claims = { sub: '1', iss: DEV_ISSUER, iat: now(), exp: now() + 600 }
  const cases: Array<[string, () => Promise<string | undefined>, string]> = [
    ['no token', async () => undefined, 'UNAUTHORIZED'],
    ['garbage', async () => 'garbage', 'UNAUTHORIZED'],
    ['a flipped character in the signature', async () => tamper(emma, 2), 'UNAUTHORIZED'],
    ['a flipped character in the payload', async () => tamper(emma, 1), 'UNAUTHORIZED'],
    ['a payload swapped for Bruno\'s, Emma\'s signature kept', async () => reclaim(emma, { ...claims, sub: '2' }), 'UNAUTHORIZED'],
    ['a payload with a later exp, signature kept', async () => reclaim(emma, { ...claims, exp: now() + 86_400 }), 'UNAUTHORIZED'],
    ['alg: none, no signature', async () => unsigned(claims), 'UNAUTHORIZED'],
    ['alg: none with a real signature left on', async () => unsigned(claims, emma.split('.')[2]), 'UNAUTHORIZED'],
    ['alg: HS512 with the right secret (algorithm not allowed)', async () => hs256(SECRET, claims, 'HS512'), 'UNAUTHORIZED'],
    ['signed with another secret', async () => devToken({}, OTHER_SECRET), 'UNAUTHORIZED'],
    ['expired', async () => devToken({ iat: now() - 120, exp: now() - 60 }), 'TOKEN_EXPIRED'],
    ['expired and signed with another secret (the signature is checked first)', async () => devToken({ exp: now() - 60 }, OTHER_SECRET), 'UNAUTHORIZED'],
    ['an unknown subject', async () => devToken({ sub: '99' }), 'UNAUTHORIZED'],
    ['no subject', async () => devToken({ sub: undefined }), 'UNAUTHORIZED'],
    ['no exp', async () => devToken({ exp: undefined }), 'UNAUTHORIZED'],
    ['another issuer', async () => devToken({ iss: 'https://elsewhere.example/' }), 'UNAUTHORIZED'],
    ['a not-yet-valid token (nbf in an hour)', async () => devToken({ nbf: now() + 3600 }), 'UNAUTHORIZED'],
    ['a service scope in a token signed with another secret', async () => devToken({ sub: 'billing-backend', scope: 'notify:service' }, OTHER_SECRET), 'UNAUTHORIZED']
  ]
  for (const [what, make, code] of cases) {
    t.test(what, async (t) => assertRefusedEverywhere(t, gateway, bus, await make(), code))
  }

  t.test('the refusals changed nothing for Bruno', async (t) => {
    const page = (await history(app, bruno)).json<Page>()
    t.equal(page.unread, brunoUnread)
    t.ok(page.items.every((item) => !item.read))
  })

  t.test('a dev user token naming a follower is 403; a service token the gateway signed may name one from the directory', async (t) => {
    const response = await follow(app, emma, { followeeId: '3', followerId: '2' })
    t.equal(response.statusCode, 403)
    t.match(response.json(), { statusCode: 403, code: 'FORBIDDEN', message: /followerId/ })
    const signed = await app.inject({ method: 'POST', url: '/api/sessions', payload: { service: 'billing-backend' } })
    const service = signed.json<{ token: string }>().token
    t.match((await follow(app, service, { followeeId: '3', followerId: '2' })).json(), { notification: { userId: '3', actor: { id: '2', name: 'Bruno' } } })
    const stranger = await follow(app, service, { followeeId: '3', followerId: '99' })
    t.match({ status: stranger.statusCode, body: stranger.json() }, { status: 404, body: { code: 'UNKNOWN_USER', message: /followerId "99"/ } }, 'dev mode: the directory is the whole world')
    const unknownFollowee = await follow(app, service, { followeeId: 'u-7f3a', followerId: '2' })
    t.match({ status: unknownFollowee.statusCode, body: unknownFollowee.json() }, { status: 404, body: { code: 'UNKNOWN_USER', message: /followeeId "u-7f3a"/ } })
  })

  t.test('a token is taken only from the Authorization header on API routes, and only as Bearer', async (t) => {
    const published = bus.published.length
    for (const [what, headers] of [
      ['trailing junk after the token', { authorization: `Bearer ${emma} extra` }],
      ['two tokens', { authorization: `Bearer ${emma},Bearer ${emma}` }],
      ['Basic', { authorization: `Basic ${Buffer.from(`1:${emma}`).toString('base64')}` }],
      ['a token as a cookie', { cookie: `token=${emma}` }]
    ] as const) {
      const response = await app.inject({ method: 'POST', url: '/api/follows', headers, payload: { followeeId: '2' } })
      t.equal(response.statusCode, 401, what)
      t.equal(response.json().code, 'UNAUTHORIZED', what)
    }
    t.equal(bus.published.length, published)
  })
})

t.test('a token of another user never reaches that user\'s items', async (t) => {
  const bus = new FakeBus()
  const gateway = await startGateway(t, { bus, env: { AUTH_SECRET: SECRET } })
  const { app, url } = gateway
  const [emma, bruno, rick] = [await signIn(app, '1'), await signIn(app, '2'), await signIn(app, '3')]
  for (const [token, followee] of [[bruno, '1'], [emma, '2'], [rick, '2'], [emma, '2'], [rick, '1'], [emma, '2']] as const) {
    t.equal((await follow(app, token, { followeeId: followee })).statusCode, 202)
  }
  const brunos = (await history(app, bruno)).json<Page>()
  t.equal(brunos.items.length, 4)
  t.equal(brunos.unread, 4)

  t.test('GET /api/notifications with Emma\'s token yields only userId 1, whatever the cursor', async (t) => {
    const queries = ['', '?limit=100', '?limit=1', ...brunos.items.map((item) => `?before=${item.cursor}`), `?before=${gateway.services.inbox.epoch}.999999999999999`]
    let seen = 0
    for (const query of queries) {
      const response = await history(app, emma, query)
      t.equal(response.statusCode, 200, query)
      const page = response.json<Page>()
      seen += page.items.length
      t.ok(page.items.every((item) => item.userId === '1'), `${query}: only Emma's items`)
      t.notOk(page.items.some((item) => brunos.items.some((other) => other.id === item.id)), `${query}: none of Bruno's ids`)
    }
    t.ok(seen > 0, 'Emma did see her own items')
  })

  t.test('POST /api/notifications/read with Bruno\'s ids or cursors changes nothing for Bruno', async (t) => {
    const emmaUnread = (await history(app, emma)).json<Page>().unread
    const byIds = await markRead(app, emma, { ids: brunos.items.map((item) => item.id) })
    t.equal(byIds.statusCode, 200)
    t.match(byIds.json(), { unread: emmaUnread, rev: 0 }, 'Emma\'s own count, unchanged: none of the ids were hers')
    const byCursor = await markRead(app, emma, { upTo: brunos.items[0]!.cursor })
    t.equal(byCursor.statusCode, 200)
    t.match(byCursor.json(), { unread: 0, rev: 1 }, 'upTo marks Emma\'s own items only')
    const after = (await history(app, bruno)).json<Page>()
    t.equal(after.unread, 4, 'Bruno\'s unread count is unchanged')
    t.ok(after.items.every((item) => !item.read), 'every one of Bruno\'s items is still unread')
  })

  t.test('/ws with Emma\'s token replays and pushes only Emma\'s notifications', async (t) => {
    const feed = await FeedClient.open(t, url, `/ws?token=${emma}&since=0`)
    // Bruno gets one more while Emma is connected; then Emma gets one: her next frame must be hers.
    await feed.until('catch-up', () => feed.frames.some((frame) => frame.type === 'synced'))
    t.equal((await follow(app, rick, { followeeId: '2' })).statusCode, 202)
    const own = (await follow(app, rick, { followeeId: '1' })).json<{ notification: { id: string } }>().notification
    await feed.until('the live notification', () => feed.frames.some((frame) => frame.type === 'notification' && frame.notification.id === own.id))
    const notifications = feed.frames.flatMap((frame) => frame.type === 'notification' ? [frame.notification] : [])
    t.equal(notifications.length, 3, 'two replayed, one live')
    t.ok(notifications.every((notification) => notification.userId === '1'), 'every frame is Emma\'s')
    t.match(feed.frames[0], { type: 'ready', user: { id: '1', name: 'Emma' } })
  })
})

t.test('AUTH_MODE=jwt with an HS256 identity service', async (t) => {
  const bus = new FakeBus()
  const gateway = await startGateway(t, {
    bus,
    env: { AUTH_MODE: 'jwt', AUTH_SECRET: SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE }
  })
  const { app, url } = gateway

  t.test('POST /api/sessions does not exist', async (t) => {
    const response = await app.inject({ method: 'POST', url: '/api/sessions', payload: { userId: '1' } })
    t.equal(response.statusCode, 404)
    t.match(response.json(), { statusCode: 404, code: 'NOT_FOUND' })
  })

  t.test('a token of the identity service opens every route', async (t) => {
    const lena = await idToken({ sub: '4' })
    const followed = await follow(app, lena, { followeeId: '1' })
    t.equal(followed.statusCode, 202)
    t.same(followed.json().notification.actor, { id: '4', name: 'Lena' })
    const emma = await idToken({ sub: '1' })
    const page = await history(app, emma)
    t.equal(page.statusCode, 200)
    t.equal(page.json<Page>().items.length, 1)
    t.equal((await markRead(app, emma, { upTo: page.json<Page>().items[0]!.cursor })).json<{ unread: number }>().unread, 0)
    const upgraded = await FeedClient.upgrade(t, url, `/ws?token=${emma}`)
    t.equal(upgraded.opened, true)
    if (upgraded.opened) t.match(await upgraded.feed.ready, { type: 'ready', user: { id: '1', name: 'Emma' }, unread: 0 })
  })

  const cases: Array<[string, () => Promise<string>, string]> = [
    ['a wrong issuer', () => idToken({ iss: 'https://evil.example.com/' }), 'UNAUTHORIZED'],
    ['no issuer', () => idToken({ iss: undefined }), 'UNAUTHORIZED'],
    ['a wrong audience', () => idToken({ aud: 'another-service' }), 'UNAUTHORIZED'],
    ['no audience', () => idToken({ aud: undefined }), 'UNAUTHORIZED'],
    ['nbf in the future', () => idToken({ nbf: now() + 3600 }), 'UNAUTHORIZED'],
    ['expired', () => idToken({ exp: now() - 60 }), 'TOKEN_EXPIRED'],
    ['no exp', () => idToken({ exp: undefined }), 'UNAUTHORIZED'],
    ['a subject that is no user id', () => idToken({ sub: 'not an id!' }), 'UNAUTHORIZED'],
    ['a subject longer than 64 characters', () => idToken({ sub: 'x'.repeat(65) }), 'UNAUTHORIZED'],
    ['signed with another secret', () => idToken({}, OTHER_SECRET), 'UNAUTHORIZED'],
    ['a dev-mode token of some gateway', () => devToken({}, OTHER_SECRET), 'UNAUTHORIZED'],
    ['alg: none', async () => unsigned({ sub: '4', iss: ISSUER, aud: AUDIENCE, exp: now() + 600 }), 'UNAUTHORIZED'],
    ['a tampered signature', async () => tamper(await idToken({}), 2), 'UNAUTHORIZED'],
    ['a tampered payload', async () => tamper(await idToken({}), 1), 'UNAUTHORIZED'],
    ['a near-miss service scope (notify:services) for a subject that is no user id', () => idToken({ sub: 'billing backend', scope: 'notify:services' }), 'UNAUTHORIZED']
  ]
  for (const [what, make, code] of cases) {
    t.test(`refused: ${what}`, async (t) => assertRefusedEverywhere(t, gateway, bus, await make(), code))
  }

  t.test('a service token may follow for any follower', async (t) => {
    const service = await idToken({ sub: 'billing-backend', scope: 'notify:service' })
    const published = bus.published.length
    const response = await follow(app, service, { followeeId: '1', followerId: '2' })
    t.equal(response.statusCode, 202)
    t.match(response.json().notification, { userId: '1', actor: { id: '2', name: 'Bruno' }, message: 'Bruno started following you.' })
    t.equal(bus.published.length, published + 1)
    const amongOthers = await idToken({ sub: 'billing-backend', scope: 'openid notify:service profile' })
    t.equal((await follow(app, amongOthers, { followeeId: '2', followerId: '3' })).statusCode, 202, 'the scope may be one of several')

    const missing = await follow(app, service, { followeeId: '1' })
    t.equal(missing.statusCode, 400)
    t.match(missing.json(), { statusCode: 400, code: 'INVALID_BODY', message: /followerId/ })
    const stranger = await follow(app, service, { followeeId: 'u-90b1', followerId: 'u-7f3a' })
    t.equal(stranger.statusCode, 202, 'any follower and followee: no directory lists them')
    t.match(stranger.json().notification, { userId: 'u-90b1', actor: { id: 'u-7f3a', name: 'u-7f3a' }, message: 'u-7f3a started following you.' })
    const self = await follow(app, service, { followeeId: '1', followerId: '1' })
    t.equal(self.statusCode, 400)
    t.equal(self.json().code, 'SELF_FOLLOW')
    t.equal(bus.published.length, published + 3, 'only the three accepted follows were published')
  })

  t.test('a subject no directory lists is a user, named by its `name` claim, else the directory, else its id', async (t) => {
    const ana = await idToken({ sub: 'u-7f3a', name: 'Ana' })
    const followed = await follow(app, ana, { followeeId: 'u-90b1' })
    t.equal(followed.statusCode, 202, 'follows anyone')
    t.same(followed.json().notification.actor, { id: 'u-7f3a', name: 'Ana' })
    t.same((await follow(app, await idToken({ sub: '4', name: 'Lena B.' }), { followeeId: 'u-90b1' })).json().notification.actor, { id: '4', name: 'Lena B.' }, 'the claim wins over the directory')
    t.same((await follow(app, await idToken({ sub: 'u-1', name: '  ' }), { followeeId: 'u-90b1' })).json().notification.actor, { id: 'u-1', name: 'u-1' }, 'a blank name is no name')
    const theirs = await idToken({ sub: 'u-90b1' })
    const page = (await history(app, theirs)).json<Page>()
    t.equal(page.items.filter((item) => item.userId === 'u-90b1').length, 4, 'the followee, in no directory, has their history')
    const feed = await FeedClient.connect(url, theirs)
    t.teardown(() => feed.close())
    t.match(await feed.next(), { type: 'ready', user: { id: 'u-90b1', name: 'u-90b1' }, unread: 4 })
  })

  t.test('a user token naming a follower is 403 FORBIDDEN', async (t) => {
    const published = bus.published.length
    const response = await follow(app, await idToken({ sub: '4' }), { followeeId: '1', followerId: '2' })
    t.equal(response.statusCode, 403)
    t.match(response.json(), { statusCode: 403, code: 'FORBIDDEN', message: /followerId/ })
    const own = await follow(app, await idToken({ sub: '4' }), { followeeId: '1', followerId: '4' })
    t.equal(own.statusCode, 403, 'even naming itself')
    t.equal(bus.published.length, published)
  })
})

t.test('AUTH_MODE=jwt with RS256/ES256 keys from a JWKS URL', async (t) => {
  const rsa = await generateKeyPair('RS256', { extractable: true })
  const ec = await generateKeyPair('ES256', { extractable: true })
  const impostor = await generateKeyPair('RS256', { extractable: true })
  const keys: JWK[] = [
    { ...await exportJWK(rsa.publicKey), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...await exportJWK(ec.publicKey), kid: 'ec-1', alg: 'ES256', use: 'sig' }
  ]
  let fetches = 0
  const jwks = createServer((_request, response) => {
    fetches++
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }))
  })
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => jwks.close(() => resolve())))
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`

  const bus = new FakeBus()
  const gateway = await startGateway(t, { bus, env: { AUTH_MODE: 'jwt', AUTH_JWKS_URL: jwksUrl, AUTH_ISSUER: ISSUER, AUTH_ALLOW_ANY_AUDIENCE: '1' } })
  const { app } = gateway
  const sign = (key: CryptoKey, alg: string, kid: string, claims: JWTPayload = {}): Promise<string> =>
    new SignJWT({ sub: '2', iss: ISSUER, exp: now() + 600, ...claims }).setProtectedHeader({ alg, kid }).sign(key)

  t.test('an RS256 and an ES256 token from the identity service work; the key set is fetched once', async (t) => {
    const rs = await follow(app, await sign(rsa.privateKey, 'RS256', 'rsa-1'), { followeeId: '1' })
    t.equal(rs.statusCode, 202)
    t.same(rs.json().notification.actor, { id: '2', name: 'Bruno' })
    const es = await follow(app, await sign(ec.privateKey, 'ES256', 'ec-1', { sub: '3' }), { followeeId: '1' })
    t.equal(es.statusCode, 202)
    t.same(es.json().notification.actor, { id: '3', name: 'Rick' })
    t.equal((await history(app, await sign(rsa.privateKey, 'RS256', 'rsa-1', { sub: '1' }))).json<Page>().items.length, 2)
    t.equal(fetches, 1, 'the JWKS is cached')
  })

  const publicPem = await exportSPKI(rsa.publicKey)
  const cases: Array<[string, () => Promise<string>, string]> = [
    ['RS256 signed by another key under a known kid', () => sign(impostor.privateKey, 'RS256', 'rsa-1')],
    ['RS256 under an unknown kid', () => sign(impostor.privateKey, 'RS256', 'rsa-2')],
    ['HS256 keyed with the RSA public key (algorithm confusion)', () => hs256(publicPem, { sub: '2', iss: ISSUER, exp: now() + 600 })],
    ['HS256 with no secret configured', () => hs256(SECRET, { sub: '2', iss: ISSUER, exp: now() + 600 })],
    ['alg: none', async () => unsigned({ sub: '2', iss: ISSUER, exp: now() + 600 })],
    ['RS256 expired', () => sign(rsa.privateKey, 'RS256', 'rsa-1', { exp: now() - 60 })],
    ['RS256 of a wrong issuer', () => sign(rsa.privateKey, 'RS256', 'rsa-1', { iss: 'https://evil.example.com/' })],
    ['RS256 with a tampered payload', async () => tamper(await sign(rsa.privateKey, 'RS256', 'rsa-1'), 1)]
  ].map(([what, make]) => [what as string, make as () => Promise<string>, what === 'RS256 expired' ? 'TOKEN_EXPIRED' : 'UNAUTHORIZED'])
  for (const [what, make, code] of cases) {
    t.test(`refused: ${what}`, async (t) => assertRefusedEverywhere(t, gateway, bus, await make(), code))
  }
})

// A JWKS endpoint that fails says nothing about the token: 401 would make clients drop good ones.
t.test('AUTH_MODE=jwt with a JWKS URL that fails: 503 AUTH_UNAVAILABLE, never a 500, a 401 or a 202', async (t) => {
  const broken = createServer((_request, response) => { response.writeHead(500).end('down') })
  await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => broken.close(() => resolve())))
  const { privateKey } = await generateKeyPair('RS256')
  const bus = new FakeBus()
  const { app } = await startGateway(t, {
    bus,
    listen: false,
    env: { AUTH_MODE: 'jwt', AUTH_JWKS_URL: `http://127.0.0.1:${(broken.address() as AddressInfo).port}/jwks.json`, AUTH_ALLOW_ANY_AUDIENCE: '1' }
  })
  const token = await new SignJWT({ sub: '2', exp: now() + 600 }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).sign(privateKey)
  const response = await follow(app, token, { followeeId: '1' })
  t.equal(response.statusCode, 503)
  t.match(response.json(), { statusCode: 503, code: 'AUTH_UNAVAILABLE', message: /identity service's keys/ })
  t.equal(response.headers['retry-after'], '1')
  t.equal(bus.published.length, 0)
})

t.test('a socket whose token expires is closed with 4001', async (t) => {
  t.test('dev mode (a 2-second token signed with AUTH_SECRET)', async (t) => {
    const { url, services } = await startGateway(t, { bus: new FakeBus(), env: { AUTH_SECRET: SECRET } })
    const token = await devToken({ sub: '2', exp: now() + 2 })
    const feed = await FeedClient.open(t, url, `/ws?token=${token}`)
    const closed = await feed.closed
    t.equal(closed.code, 4001)
    t.match(closed.reason, /expired/)
    t.match(feed.frames[0], { type: 'ready', user: { id: '2' } }, 'it was open and ready before')
    await eventually('the hub forgets the socket', () => services.hub.connectionsOf('2') === 0)
    t.equal(services.hub.connectionsOf('2'), 0)
  })

  t.test('jwt mode (a 2-second token of the identity service)', async (t) => {
    const { url } = await startGateway(t, { bus: new FakeBus(), env: { AUTH_MODE: 'jwt', AUTH_SECRET: SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE } })
    const feed = await FeedClient.open(t, url, `/ws?token=${await idToken({ sub: '3', exp: now() + 2 })}`)
    t.equal((await feed.closed).code, 4001)
  })
})

// Regression: the expiry timer was clamped to 2^31-1 ms and then closed the socket with 4001,
// though the token was still valid.
t.test('a socket whose token outlives setTimeout\'s ceiling (~24.8 days) stays open past the ceiling, and closes at its exp', async (t) => {
  const clock = new FakeClock(Date.now())
  const { app, url } = await startGateway(t, { bus: new FakeBus(), env: { AUTH_SECRET: SECRET }, clock })
  const thirtyDays = 30 * 86_400
  const feed = await FeedClient.open(t, url, `/ws?token=${await devToken({ sub: '2', iat: Math.floor(clock.now() / 1000), exp: Math.floor(clock.now() / 1000) + thirtyDays })}`)
  await feed.ready
  // The expiry timer can wait at most setTimeout's ceiling: there it must wait again, not close.
  clock.advance(2 ** 31 - 1)
  const emma = await signIn(app, '1')
  const sent = (await follow(app, emma, { followeeId: '2' })).json<{ notification: { id: string } }>().notification
  const outcome = await Promise.race([
    feed.closed.then(({ code }) => `closed with ${code}`),
    feed.until('the notification', () => feed.frames.some((frame) => frame.type === 'notification' && frame.notification.id === sent.id)).then(() => 'delivered')
  ])
  t.equal(outcome, 'delivered', 'the socket still gets its notifications')
  clock.advance(thirtyDays * 1000 - (2 ** 31 - 1))
  t.match(await feed.closed, { code: 4001 }, 'and is closed with 4001 once its exp has come')
})
