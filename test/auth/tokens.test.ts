import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose'
import { AuthError, SERVICE_SCOPE, Tokens, type Principal, type TokenSettings } from '../../server/auth/tokens.js'
import { createDirectory, DEFAULT_USERS } from '../../server/directory.js'
import { FakeClock } from '../helpers/fake-clock.js'

const directory = createDirectory(DEFAULT_USERS)
const emma = { id: '1', name: 'Emma' }
const SECRET = 'a-test-secret-that-is-long-enough-for-hs256'
const OTHER_SECRET = 'another-secret-that-is-long-enough-for-hs256'
const DEV_ISSUER = 'kafka-notify-dev'
const UNAUTHORIZED = { name: 'AuthError', code: 'UNAUTHORIZED' }

function settings (overrides: Partial<TokenSettings> = {}): TokenSettings {
  return { mode: 'dev', secret: SECRET, jwksUrl: undefined, issuer: undefined, audience: undefined, anyAudience: false, sessionTtlSeconds: 600, ...overrides }
}

function inAnHour (): number {
  return Math.floor(Date.now() / 1000) + 3600
}

/** An HS256 token with the given claims, signed with `secret`. */
async function hs256 (secret: string, claims: JWTPayload, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret))
}

function base64url (value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

t.test('dev mode: a signed token verifies as its user', async (t) => {
  const tokens = new Tokens(settings(), directory)
  const before = Math.floor(Date.now() / 1000)
  const { token, expiresAt } = await tokens.sign(emma)
  const principal = await tokens.verify(token)
  t.same(principal.user, emma)
  t.equal(principal.service, false)
  t.ok(principal.expiresAt !== undefined && principal.expiresAt >= before + 600 && principal.expiresAt <= before + 601, 'expires after the session TTL')
  t.equal(expiresAt, new Date(principal.expiresAt! * 1000).toISOString(), 'expiresAt is the token\'s exp in ISO-8601')
})

t.test('dev mode without a secret signs with a random one per instance', async (t) => {
  const first = new Tokens(settings({ secret: undefined }), directory)
  const second = new Tokens(settings({ secret: undefined }), directory)
  const { token } = await first.sign(emma)
  t.same((await first.verify(token)).user, emma)
  await t.rejects(second.verify(token), UNAUTHORIZED, 'another process cannot verify it')
})

t.test('an expired token is refused with TOKEN_EXPIRED', async (t) => {
  const expired = new Tokens(settings({ sessionTtlSeconds: -10 }), directory)
  const { token } = await expired.sign(emma)
  await t.rejects(expired.verify(token), { code: 'TOKEN_EXPIRED', canRetry: false })
  const error = await expired.verify(token).catch((error: unknown) => error)
  t.type(error, AuthError)
  t.notOk(Object.hasOwn(error as object, 'statusCode'), 'no HTTP status: the route\'s answer (401) is decided at the edge')
})

t.test('dev mode refuses every token it did not sign for a directory user', async (t) => {
  const tokens = new Tokens(settings(), directory)
  const { token } = await tokens.sign(emma)
  const [header, payload, signature] = token.split('.') as [string, string, string]

  t.test('a tampered signature', async (t) => {
    const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1)
    await t.rejects(tokens.verify(`${header}.${payload}.${flipped}`), UNAUTHORIZED)
  })

  t.test('a tampered payload', async (t) => {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as JWTPayload
    const asBruno = base64url({ ...claims, sub: '2' })
    await t.rejects(tokens.verify(`${header}.${asBruno}.${signature}`), UNAUTHORIZED)
  })

  t.test('an alg:none token', async (t) => {
    const claims = { sub: '1', iss: DEV_ISSUER, exp: inAnHour() }
    await t.rejects(tokens.verify(`${base64url({ alg: 'none' })}.${base64url(claims)}.`), UNAUTHORIZED)
    await t.rejects(tokens.verify(`${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.${signature}`), UNAUTHORIZED)
  })

  t.test('a token signed with another secret', async (t) => {
    const other = new Tokens(settings({ secret: OTHER_SECRET }), directory)
    await t.rejects(tokens.verify((await other.sign(emma)).token), UNAUTHORIZED)
  })

  t.test('a token with the right secret and another HMAC algorithm', async (t) => {
    await t.rejects(tokens.verify(await hs256(SECRET, { sub: '1', iss: DEV_ISSUER, exp: inAnHour() }, 'HS512')), UNAUTHORIZED)
  })

  t.test('a token from another issuer', async (t) => {
    await t.rejects(tokens.verify(await hs256(SECRET, { sub: '1', iss: 'someone-else', exp: inAnHour() })), UNAUTHORIZED)
  })

  t.test('a token without exp', async (t) => {
    await t.rejects(tokens.verify(await hs256(SECRET, { sub: '1', iss: DEV_ISSUER })), UNAUTHORIZED)
  })

  t.test('a token whose sub is not a directory user', async (t) => {
    const stranger = await hs256(SECRET, { sub: '99', iss: DEV_ISSUER, exp: inAnHour() })
    await t.rejects(tokens.verify(stranger), { ...UNAUTHORIZED, message: /subject is not a known user/ })
    const numericSub = await hs256(SECRET, { sub: 1 as unknown as string, iss: DEV_ISSUER, exp: inAnHour() })
    await t.rejects(tokens.verify(numericSub), UNAUTHORIZED, 'a non-string sub')
  })

  t.test('garbage', async (t) => {
    for (const garbage of ['garbage', '', 'a.b.c', '...', `${header}.${payload}`, `${token}.extra`]) {
      await t.rejects(tokens.verify(garbage), UNAUTHORIZED, JSON.stringify(garbage))
    }
  })
})

t.test('dev mode signs a service token on request, for a name no directory lists', async (t) => {
  const tokens = new Tokens(settings(), directory)
  const { token } = await tokens.sign({ id: 'billing', name: 'billing' }, { service: true })
  t.same(await tokens.verify(token), { user: { id: 'billing', name: 'billing' }, service: true, expiresAt: (await tokens.verify(token)).expiresAt })
  t.equal((await tokens.verify((await tokens.sign(emma)).token)).service, false, 'a user token is no service token')
  const foreign = await hs256(OTHER_SECRET, { sub: 'billing', iss: DEV_ISSUER, exp: inAnHour(), scope: SERVICE_SCOPE })
  await t.rejects(tokens.verify(foreign), UNAUTHORIZED, 'the scope counts only in a token this gateway signed')
})

t.test('dev mode with an audience signs and checks it', async (t) => {
  const tokens = new Tokens(settings({ audience: 'notify' }), directory)
  t.same((await tokens.verify((await tokens.sign(emma)).token)).user, emma)
  const noAudience = await hs256(SECRET, { sub: '1', iss: DEV_ISSUER, exp: inAnHour() })
  await t.rejects(tokens.verify(noAudience), UNAUTHORIZED)
})

t.test('jwt mode with an HS256 secret', async (t) => {
  const tokens = new Tokens(settings({ mode: 'jwt', issuer: 'https://id.example.com/', audience: 'notify' }), directory)
  const good = { sub: '2', iss: 'https://id.example.com/', aud: 'notify', exp: inAnHour() }

  t.test('verifies a token from the identity service', async (t) => {
    const principal = await tokens.verify(await hs256(SECRET, good))
    t.same(principal, { user: { id: '2', name: 'Bruno' }, service: false, expiresAt: good.exp })
  })

  t.test('checks the issuer and the audience', async (t) => {
    await t.rejects(tokens.verify(await hs256(SECRET, { ...good, iss: 'https://evil.example.com/' })), UNAUTHORIZED, 'wrong issuer')
    await t.rejects(tokens.verify(await hs256(SECRET, { ...good, aud: 'another-api' })), UNAUTHORIZED, 'wrong audience')
    const { iss: _iss, ...noIssuer } = good
    await t.rejects(tokens.verify(await hs256(SECRET, noIssuer)), UNAUTHORIZED, 'no issuer')
    const { aud: _aud, ...noAudience } = good
    await t.rejects(tokens.verify(await hs256(SECRET, noAudience)), UNAUTHORIZED, 'no audience')
    t.same((await tokens.verify(await hs256(SECRET, { ...good, aud: ['other', 'notify'] }))).user.id, '2', 'one of several audiences')
  })

  t.test('refuses an expired token with TOKEN_EXPIRED, a foreign signature with UNAUTHORIZED', async (t) => {
    await t.rejects(tokens.verify(await hs256(SECRET, { ...good, exp: Math.floor(Date.now() / 1000) - 60 })), { name: 'AuthError', code: 'TOKEN_EXPIRED' })
    await t.rejects(tokens.verify(await hs256(OTHER_SECRET, good)), UNAUTHORIZED)
  })

  t.test('a dev-issued token is not accepted', async (t) => {
    await t.rejects(tokens.verify(await hs256(SECRET, { ...good, iss: DEV_ISSUER })), UNAUTHORIZED)
  })

  t.test('does not sign tokens', async (t) => {
    await t.rejects(tokens.sign(emma), { message: 'Only dev mode signs tokens' })
  })

  t.test('any subject that is a user id is a user, named by the token, the directory or the id', async (t) => {
    t.same((await tokens.verify(await hs256(SECRET, { ...good, sub: 'u-7f3a', name: 'Ana' }))).user, { id: 'u-7f3a', name: 'Ana' }, 'the name claim')
    t.same((await tokens.verify(await hs256(SECRET, { ...good, sub: '2', name: 'Bruno M.' }))).user, { id: '2', name: 'Bruno M.' }, 'the claim wins over the directory')
    t.same((await tokens.verify(await hs256(SECRET, { ...good, sub: '2' }))).user, { id: '2', name: 'Bruno' }, 'the directory, without a claim')
    t.same((await tokens.verify(await hs256(SECRET, { ...good, sub: 'u-7f3a' }))).user, { id: 'u-7f3a', name: 'u-7f3a' }, 'the id, without either')
    t.same((await tokens.verify(await hs256(SECRET, { ...good, sub: 'u-7f3a', name: 42 }))).user.name, 'u-7f3a', 'a name that is not a string is no name')
    t.equal((await tokens.verify(await hs256(SECRET, { ...good, sub: 'u-7f3a', name: 'n'.repeat(300) }))).user.name.length, 200, 'a long name is cut to 200 characters')
    for (const sub of ['', 'a b', 'x'.repeat(65), 'ü', '1/2']) {
      await t.rejects(tokens.verify(await hs256(SECRET, { ...good, sub })), { ...UNAUTHORIZED, message: /subject is not a user id/ }, JSON.stringify(sub))
    }
  })

  t.test('the service scope makes the principal a service', async (t) => {
    t.equal((await tokens.verify(await hs256(SECRET, { ...good, scope: SERVICE_SCOPE }))).service, true)
    t.equal((await tokens.verify(await hs256(SECRET, { ...good, scope: 'notify:service' }))).service, true)
    t.equal((await tokens.verify(await hs256(SECRET, { ...good, scope: 'openid notify:service profile' }))).service, true, 'among other scopes')
    t.equal((await tokens.verify(await hs256(SECRET, { ...good, scope: 'notify:services' }))).service, false, 'a longer scope')
    t.equal((await tokens.verify(await hs256(SECRET, { ...good, scope: 'openid profile' }))).service, false, 'other scopes only')
    t.equal((await tokens.verify(await hs256(SECRET, { ...good, scope: ['notify:service'] }))).service, false, 'scope must be a string')
  })
})

t.test('jwt mode with a JWKS URL', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('RS256')
  const other = await generateKeyPair('RS256')
  const jwk = { ...await exportJWK(publicKey), kid: 'key-1', alg: 'RS256', use: 'sig' }
  let fetches = 0
  const server = createServer((request, response) => {
    fetches++
    if (request.url !== '/.well-known/jwks.json') {
      response.writeHead(404).end()
      return
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`
  const tokens = new Tokens(settings({ mode: 'jwt', secret: undefined, jwksUrl, issuer: 'https://id.example.com/' }), directory)
  const claims = { sub: '3', iss: 'https://id.example.com/', exp: inAnHour() }
  const rs256 = async (key: typeof privateKey, kid = 'key-1'): Promise<string> =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(key)

  const principal = await tokens.verify(await rs256(privateKey))
  t.same(principal.user, { id: '3', name: 'Rick' }, 'an RS256 token signed by the published key verifies')
  t.ok(fetches >= 1, 'the key set was fetched from the URL')

  await t.rejects(tokens.verify(await rs256(other.privateKey)), UNAUTHORIZED, 'another key under the same kid')
  await t.rejects(tokens.verify(await rs256(other.privateKey, 'key-2')), UNAUTHORIZED, 'a key the set does not have')

  const publicPem = Buffer.from(JSON.stringify(jwk))
  const confused = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'key-1' }).sign(publicPem)
  await t.rejects(tokens.verify(confused), UNAUTHORIZED, 'HS256 with the public key as secret (algorithm confusion)')

  const none = `${base64url({ alg: 'none', kid: 'key-1' })}.${base64url(claims)}.`
  await t.rejects(tokens.verify(none), UNAUTHORIZED, 'alg:none')

  const expired = await new SignJWT({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 })
    .setProtectedHeader({ alg: 'RS256', kid: 'key-1' }).sign(privateKey)
  await t.rejects(tokens.verify(expired), { name: 'AuthError', code: 'TOKEN_EXPIRED' })
})

t.test('jwt mode with both a secret and a JWKS URL accepts either kind of token', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = { ...await exportJWK(publicKey), kid: 'es', alg: 'ES256' }
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`
  const tokens = new Tokens(settings({ mode: 'jwt', jwksUrl }), directory)
  const claims = { sub: '4', exp: inAnHour() }
  const es256 = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'es' }).sign(privateKey)
  t.equal((await tokens.verify(es256)).user.name, 'Lena', 'ES256 through the JWKS')
  t.equal((await tokens.verify(await hs256(SECRET, claims))).user.name, 'Lena', 'HS256 through the secret')
  await t.rejects(tokens.verify(await hs256(OTHER_SECRET, claims)), UNAUTHORIZED)
})

// Regression: the cache was a Map that dropped its first key when full, the oldest
// inserted: the token of a client busy every second went first.
t.test('a token used often survives a flood of new tokens', async (t) => {
  const tokens = new Tokens(settings(), directory, { cacheSize: 10 })
  const hot = await hs256(SECRET, { sub: '1', iss: DEV_ISSUER, exp: inAnHour(), jti: 'hot' })
  const first = await tokens.verify(hot)
  const flood: Array<{ token: string, principal: Principal }> = []
  for (let i = 0; i < 50; i++) {
    const token = await hs256(SECRET, { sub: '2', iss: DEV_ISSUER, exp: inAnHour(), jti: `flood-${i}` })
    flood.push({ token, principal: await tokens.verify(token) })
    await tokens.verify(hot)
  }
  // The very same object: served from the cache all along, never verified again.
  t.equal(await tokens.verify(hot), first)
  // So is any token served from the cache; one verified again comes back as a new object.
  const cached = async ({ token, principal }: { token: string, principal: Principal }): Promise<boolean> => await tokens.verify(token) === principal
  const newest = flood.slice(-9)
  t.same(await Promise.all(newest.map(cached)), newest.map(() => true), 'the newest nine flood tokens are remembered')
  t.equal(await cached(flood[40]!), false, 'the one before them is not: the cache stays bounded at 10')
})

// Regression: expired tokens stayed in the cache until looked up, taking the room of live ones.
t.test('an expired token leaves the cache at its exp, makes room, and is not served from it', async (t) => {
  const clock = new FakeClock(Date.now())
  const tokens = new Tokens(settings({ sessionTtlSeconds: 60 }), directory, { cacheSize: 2, clock })
  const live = await hs256(SECRET, { sub: '1', iss: DEV_ISSUER, exp: inAnHour() })
  const livePrincipal = await tokens.verify(live)
  const { token: shortLived } = await tokens.sign({ id: '2', name: 'Bruno' })
  const shortLivedPrincipal = await tokens.verify(shortLived)
  t.equal(await tokens.verify(live), livePrincipal, 'both remembered')
  t.equal(await tokens.verify(shortLived), shortLivedPrincipal, 'both remembered, the live token used least recently')

  clock.advance(61_000)
  // Had the expired token stayed, the cache (of 2) would drop its least recently used entry for the new one: the live token.
  await tokens.verify(await hs256(SECRET, { sub: '3', iss: DEV_ISSUER, exp: inAnHour() }))
  t.equal(await tokens.verify(live), livePrincipal, 'gone at its exp without a lookup: a new token took its room, not the live token\'s')
  await t.rejects(tokens.verify(shortLived), { code: 'TOKEN_EXPIRED' }, 'not served from the cache')
})

t.test('a long-lived token is remembered for at most a day, then verified again', async (t) => {
  const clock = new FakeClock(Date.now())
  const tokens = new Tokens(settings(), directory, { clock })
  const inAYear = Math.floor(clock.now() / 1000) + 365 * 24 * 3600
  const token = await hs256(SECRET, { sub: '1', iss: DEV_ISSUER, exp: inAYear })
  const first = await tokens.verify(token)
  clock.advance(24 * 60 * 60 * 1000 - 1000)
  t.equal(await tokens.verify(token), first, 'cached for the day')
  clock.advance(2000)
  const again = await tokens.verify(token)
  t.not(again, first, 'verified again after it (a timer past setTimeout\'s ceiling would fire every millisecond)')
  t.same(again, first, 'and still valid')
})
