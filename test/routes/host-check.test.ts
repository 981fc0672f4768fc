import t from 'tap'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

const JWT = { AUTH_MODE: 'jwt', AUTH_SECRET: 'an-identity-service-secret-32-chars-long', AUTH_AUDIENCE: 'kafka-notify' }

// Regression: a page on attacker.example whose name a rebinding DNS answers with
// 127.0.0.1 was same-origin with a dev-mode gateway, so it could sign in as anyone and read any feed.
t.test('dev mode answers only requests whose Host names this machine or HOST', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const signIn = (host: string) => app.inject({ method: 'POST', url: '/api/sessions', headers: { host }, payload: { userId: '1' } })
  for (const host of ['attacker.example', 'attacker.example:3000', '127.0.0.1.attacker.example', '192.0.2.1:3000', '[::2]:3000']) {
    const refused = await signIn(host)
    t.equal(refused.statusCode, 403, host)
    t.match(refused.json(), { code: 'FORBIDDEN', message: /header host .* is not a name this gateway answers to \(see ALLOWED_HOSTS\)/ }, host)
    t.notMatch(refused.body, /token/, 'no token handed out')
  }
  for (const host of ['localhost:3000', '127.0.0.1:3000', '[::1]:3000', 'LOCALHOST', '127.0.0.1']) {
    t.equal((await signIn(host)).statusCode, 201, host)
  }
  const page = await app.inject({ method: 'GET', url: '/', headers: { host: 'attacker.example' } })
  t.equal(page.statusCode, 403, 'the page itself (and its scripts) are refused too')
})

t.test('dev mode: ALLOWED_HOSTS adds names, HOST counts as one', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { HOST: '127.0.0.1', ALLOWED_HOSTS: 'my-laptop.lan' } })
  const status = async (host: string) => (await app.inject({ method: 'GET', url: '/healthz', headers: { host } })).statusCode
  t.equal(await status('my-laptop.lan:3000'), 200)
  t.equal(await status('other.lan:3000'), 403)
})

t.test('jwt mode answers any Host unless ALLOWED_HOSTS is set', async (t) => {
  const open = await startGateway(t, { bus: new FakeBus(), listen: false, env: JWT })
  t.equal((await open.app.inject({ method: 'GET', url: '/healthz', headers: { host: 'notify.example.com' } })).statusCode, 200)
  const listed = await startGateway(t, { bus: new FakeBus(), listen: false, env: { ...JWT, ALLOWED_HOSTS: 'notify.example.com' } })
  t.equal((await listed.app.inject({ method: 'GET', url: '/healthz', headers: { host: 'notify.example.com' } })).statusCode, 200)
  t.equal((await listed.app.inject({ method: 'GET', url: '/healthz', headers: { host: 'other.example.com' } })).statusCode, 403)
})
