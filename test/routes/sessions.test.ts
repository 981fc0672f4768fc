import t from 'tap'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

t.test('POST /api/sessions (AUTH_MODE=dev)', async (t) => {
  const { app, services } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { SESSION_TTL_SECONDS: '120' } })

  t.test('201 with a token for a directory user', async (t) => {
    const before = Date.now()
    const response = await app.inject({ method: 'POST', url: '/api/sessions', payload: { userId: '2' } })
    t.equal(response.statusCode, 201)
    const body = response.json()
    t.same(Object.keys(body).sort(), ['expiresAt', 'token', 'user'])
    t.same(body.user, { id: '2', name: 'Bruno' })
    t.match(body.token, /^[\w-]+\.[\w-]+\.[\w-]+$/)
    const expiresAt = Date.parse(body.expiresAt)
    t.match(body.expiresAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
    t.ok(expiresAt >= before + 119_000 && expiresAt <= Date.now() + 120_000, 'expires after SESSION_TTL_SECONDS')
    const principal = await services.tokens.verify(body.token)
    t.same(principal.user, { id: '2', name: 'Bruno' })
  })

  t.test('the token signs the user in on the API', async (t) => {
    const { token } = (await app.inject({ method: 'POST', url: '/api/sessions', payload: { userId: '3' } })).json()
    const response = await app.inject({ method: 'GET', url: '/api/notifications', headers: { authorization: `Bearer ${token}` } })
    t.equal(response.statusCode, 200)
  })

  t.test('404 UNKNOWN_USER for a user the directory does not have', async (t) => {
    const response = await app.inject({ method: 'POST', url: '/api/sessions', payload: { userId: '99' } })
    t.equal(response.statusCode, 404)
    t.match(response.json(), { statusCode: 404, error: 'Not Found', code: 'UNKNOWN_USER', message: /userId "99"/ })
  })

  t.test('400 INVALID_BODY for a bad body, naming the field', async (t) => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['no userId', {}, /userId/],
      ['an object userId', { userId: { id: '1' } }, /body\/userId/],
      ['a userId with a slash', { userId: '../1' }, /body\/userId/],
      ['an extra field', { userId: '1', admin: true }, /additional properties/],
      ['both a userId and a service', { userId: '1', service: 'billing' }, /body must have either userId or service, not both/],
      ['a service name that is no id', { service: 'the billing service' }, /body\/service/]
    ]
    for (const [what, payload, message] of cases) {
      const response = await app.inject({ method: 'POST', url: '/api/sessions', payload: payload as Record<string, unknown> })
      t.equal(response.statusCode, 400, what)
      t.match(response.json(), { statusCode: 400, code: 'INVALID_BODY', message }, what)
    }
    const notJson = await app.inject({ method: 'POST', url: '/api/sessions', headers: { 'content-type': 'application/json' }, payload: '{' })
    t.equal(notJson.statusCode, 400)
    t.equal(notJson.json().code, 'INVALID_BODY')
  })
})

t.test('POST /api/sessions with `service` signs a service token for a caller on this machine only', async (t) => {
  const { app, services } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const response = await app.inject({ method: 'POST', url: '/api/sessions', payload: { service: 'billing' }, remoteAddress: '127.0.0.1' })
  t.equal(response.statusCode, 201)
  const body = response.json()
  t.same(body.user, { id: 'billing', name: 'billing' })
  const principal = await services.tokens.verify(body.token)
  t.same({ user: principal.user, service: principal.service }, { user: { id: 'billing', name: 'billing' }, service: true }, 'a service, though no directory lists it')
  for (const remoteAddress of ['::1', '127.0.0.2', '::ffff:127.0.0.1']) {
    t.equal((await app.inject({ method: 'POST', url: '/api/sessions', payload: { service: 'billing' }, remoteAddress })).statusCode, 201, `from ${remoteAddress}`)
  }
  for (const remoteAddress of ['10.0.0.7', '192.168.1.20', '::ffff:10.0.0.7', '2001:db8::1', '128.0.0.1']) {
    const refused = await app.inject({ method: 'POST', url: '/api/sessions', payload: { service: 'billing' }, remoteAddress })
    t.equal(refused.statusCode, 403, `from ${remoteAddress}`)
    t.match(refused.json(), { code: 'FORBIDDEN', message: /body\/service.*loopback.*AUTH_MODE=jwt/ })
  }
  const user = await app.inject({ method: 'POST', url: '/api/sessions', payload: { userId: '1' }, remoteAddress: '10.0.0.7' })
  t.equal(user.statusCode, 201, 'a user token is still for anyone who reaches a dev gateway')
  t.equal((await services.tokens.verify(user.json().token)).service, false)
})

t.test('POST /api/sessions does not exist in AUTH_MODE=jwt', async (t) => {
  const { app } = await startGateway(t, {
    bus: new FakeBus(),
    listen: false,
    env: { AUTH_MODE: 'jwt', AUTH_SECRET: 'an-identity-service-secret-32-chars-long', AUTH_ALLOW_ANY_AUDIENCE: '1' }
  })
  const response = await app.inject({ method: 'POST', url: '/api/sessions', payload: { userId: '1' } })
  t.equal(response.statusCode, 404)
  t.match(response.json(), { statusCode: 404, code: 'NOT_FOUND' })
})
