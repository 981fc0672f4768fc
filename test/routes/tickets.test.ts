import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { TICKET_PATTERN } from '../../server/auth/tickets.js'
import { FeedClient, signIn } from '../helpers/clients.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'

const SECRET = 'a-secret-shared-by-the-gateways-of-this-test'

async function ticketFor (app: FastifyInstance, token: string): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/api/tickets', headers: { authorization: `Bearer ${token}` } })
  if (response.statusCode !== 201) throw new Error(`POST /api/tickets answered ${response.statusCode}: ${response.body}`)
  return response.json<{ ticket: string }>().ticket
}

// A token in `/ws?token=` lands in proxy access logs; a ticket there is spent.
t.test('POST /api/tickets: a one-time ticket for the caller, good for 30 s', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const anonymous = await app.inject({ method: 'POST', url: '/api/tickets' })
  t.equal(anonymous.statusCode, 401)
  t.match(anonymous.json(), { code: 'UNAUTHORIZED' })
  const issued = await app.inject({ method: 'POST', url: '/api/tickets', headers: { authorization: `Bearer ${await signIn(app, '1')}` } })
  t.equal(issued.statusCode, 201)
  const { ticket, expiresAt } = issued.json<{ ticket: string, expiresAt: string }>()
  t.match(ticket, new RegExp(TICKET_PATTERN))
  const left = Date.parse(expiresAt) - Date.now()
  t.ok(left > 0 && left <= 30_000, `expires within 30 s (${left} ms)`)
})

t.test('/ws?ticket= opens the ticket\'s user\'s feed, once; the token never enters the URL', async (t) => {
  const { app, url } = await startGateway(t, { bus: new FakeBus() })
  const ticket = await ticketFor(app, await signIn(app, '1'))
  const feed = await FeedClient.open(t, url, `/ws?ticket=${ticket}&since=0`)
  t.match(await feed.ready, { type: 'ready', user: { id: '1', name: 'Emma' } })

  const again = await FeedClient.upgrade(t, url, `/ws?ticket=${ticket}`)
  t.equal(again.opened, false, 'the same ticket again is refused')
  if (!again.opened) {
    t.equal(again.status, 401)
    t.match(again.body, { code: 'UNAUTHORIZED', message: /querystring\/ticket is unknown, expired or used already/ })
  }
  const unknown = await FeedClient.upgrade(t, url, `/ws?ticket=${'A'.repeat(43)}`)
  t.match(unknown, { opened: false, status: 401 }, 'a ticket never issued')
  const malformed = await FeedClient.upgrade(t, url, `/ws?ticket=${'x'.repeat(5000)}`)
  t.match(malformed, { opened: false, status: 401, body: { code: 'UNAUTHORIZED' } }, 'a malformed one, not looked up')
  const token = await FeedClient.open(t, url, `/ws?token=${await signIn(app, '2')}`)
  t.match(await token.ready, { type: 'ready', user: { id: '2' } }, '?token= still works, for existing clients')
})

t.test('/ws with the token as a subprotocol (what the page does): the user\'s feed, and the app\'s protocol answered, never the token', async (t) => {
  const { app, url } = await startGateway(t, { bus: new FakeBus() })
  const token = await signIn(app, '1')
  const feed = await FeedClient.open(t, url, '/ws?since=0', { protocols: ['kafka-notify', `bearer.${token}`] })
  t.match(await feed.ready, { type: 'ready', user: { id: '1', name: 'Emma' } })
  t.equal(feed.socket.protocol, 'kafka-notify', 'the gateway answers the app\'s subprotocol')

  const forged = await FeedClient.upgrade(t, url, '/ws', { protocols: ['kafka-notify', `bearer.${token.slice(0, -4)}AAAA`] })
  t.match(forged, { opened: false, status: 401, body: { code: 'UNAUTHORIZED' } }, 'a forged token is refused before the upgrade')
  const behindTicket = await FeedClient.open(t, url, `/ws?ticket=${'A'.repeat(43)}`, { protocols: ['kafka-notify', `bearer.${await signIn(app, '2')}`] })
  t.match(await behindTicket.ready, { type: 'ready', user: { id: '2' } }, 'the subprotocol\'s token goes before a ticket in the query')

  await t.rejects(FeedClient.upgrade(t, url, '/ws', { protocols: [`bearer.${token}`] }), /Server sent no subprotocol/,
    'offered without the app\'s protocol, the token is never echoed back as the protocol (a client must offer kafka-notify)')
  const api = await app.inject({ method: 'GET', url: '/api/notifications', headers: { 'sec-websocket-protocol': `kafka-notify, bearer.${token}` } })
  t.equal(api.statusCode, 401, 'API routes take the token from the Authorization header only')
})

t.test('with REDIS_URL a ticket issued by one gateway opens a socket on another, once', async (t) => {
  const redis = await startRedis(t)
  if (redis === undefined) return
  const env = { REDIS_URL: redis.url, AUTH_SECRET: SECRET }
  const a = await startGateway(t, { bus: new FakeBus(), env })
  const b = await startGateway(t, { bus: new FakeBus(), env })
  const ticket = await ticketFor(a.app, await signIn(a.app, '3'))
  const onB = await FeedClient.open(t, b.url, `/ws?ticket=${ticket}`)
  t.match(await onB.ready, { type: 'ready', user: { id: '3' } })
  t.match(await FeedClient.upgrade(t, a.url, `/ws?ticket=${ticket}`), { opened: false, status: 401 }, 'and spent there for the first one too')
})
