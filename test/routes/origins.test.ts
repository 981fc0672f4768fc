import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { signIn } from '../helpers/clients.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

const APP = 'https://app.example.com'
const EVIL = 'https://evil.example'
const CORS_HEADERS = ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age']

function corsHeadersOf (headers: Record<string, unknown>): string[] {
  return CORS_HEADERS.filter((name) => headers[name] !== undefined)
}

/** A browser's preflight before a POST with a bearer token and JSON. */
function preflight (app: FastifyInstance, url: string, origin: string) {
  return app.inject({
    method: 'OPTIONS',
    url,
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,idempotency-key' }
  })
}

t.test('ALLOWED_ORIGINS: an allowed origin gets CORS on the API, any other none', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { ALLOWED_ORIGINS: `${APP},http://127.0.0.1:8080` } })
  const emma = await signIn(app, '1')
  const history = (origin?: string, token = emma) => app.inject({
    method: 'GET',
    url: '/api/notifications',
    headers: { authorization: `Bearer ${token}`, ...(origin === undefined ? {} : { origin }) }
  })

  t.test('a request from an allowed origin is answered with its origin, the headers a client reads exposed', async (t) => {
    const response = await history(APP)
    t.equal(response.statusCode, 200)
    t.equal(response.headers['access-control-allow-origin'], APP)
    t.equal(response.headers['access-control-expose-headers'], 'retry-after, idempotent-replayed')
    t.match(response.headers.vary, /Origin/, 'caches keep answers per origin')
    t.equal(response.headers['access-control-allow-credentials'], undefined, 'no credentials unless CORS_CREDENTIALS')
    t.equal((await history('http://127.0.0.1:8080')).headers['access-control-allow-origin'], 'http://127.0.0.1:8080', 'each listed origin')
  })

  t.test('an error answer carries them too, so the app can read its code', async (t) => {
    const response = await history(APP, 'not-a-token')
    t.equal(response.statusCode, 401)
    t.equal(response.headers['access-control-allow-origin'], APP)
    t.equal(response.json().code, 'UNAUTHORIZED')
  })

  t.test('any other origin, or none, gets no CORS header at all', async (t) => {
    for (const origin of [EVIL, 'https://app.example.com.evil.example', 'http://app.example.com', 'null', undefined]) {
      const response = await history(origin)
      t.equal(response.statusCode, 200, `${String(origin)}: the server answers (the browser is who withholds it)`)
      t.same(corsHeadersOf(response.headers), [], `${String(origin)}: no CORS header`)
    }
  })

  t.test('a preflight from an allowed origin is answered at once, before any token', async (t) => {
    for (const url of ['/api/follows', '/api/notifications', '/api/notifications/read']) {
      const response = await preflight(app, url, APP)
      t.equal(response.statusCode, 204, url)
      t.match(response.headers, {
        'access-control-allow-origin': APP,
        'access-control-allow-methods': 'GET, HEAD, POST, PUT, DELETE',
        'access-control-allow-headers': 'authorization, content-type, idempotency-key',
        'access-control-max-age': '600'
      }, url)
    }
  })

  t.test('a preflight from any other origin is a 404 without CORS headers', async (t) => {
    const response = await preflight(app, '/api/follows', EVIL)
    t.equal(response.statusCode, 404)
    t.same(corsHeadersOf(response.headers), [])
    t.equal(response.json().code, 'NOT_FOUND')
  })
})

t.test('without ALLOWED_ORIGINS there is no CORS: the gateway\'s own page needs none', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const emma = await signIn(app, '1')
  const response = await app.inject({ method: 'GET', url: '/api/notifications', headers: { authorization: `Bearer ${emma}`, origin: APP } })
  t.same(corsHeadersOf(response.headers), [])
  t.equal((await preflight(app, '/api/follows', APP)).statusCode, 404)
})

t.test('CORS_CREDENTIALS=1: allowed origins may send credentials; others still get nothing', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { ALLOWED_ORIGINS: APP, CORS_CREDENTIALS: '1' } })
  const allowed = await preflight(app, '/api/follows', APP)
  t.equal(allowed.headers['access-control-allow-credentials'], 'true')
  t.equal(allowed.headers['access-control-allow-origin'], APP, 'the origin itself, never *')
  t.same(corsHeadersOf((await app.inject({ method: 'GET', url: '/healthz', headers: { origin: EVIL } })).headers), [])
})

t.test('ALLOWED_ORIGINS=*: any origin, named back', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { ALLOWED_ORIGINS: '*' } })
  t.equal((await preflight(app, '/api/follows', EVIL)).headers['access-control-allow-origin'], EVIL)
})
