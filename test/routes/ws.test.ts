import type { IncomingMessage } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { SignJWT } from 'jose'
import { within } from '../../server/lifecycle.js'
import { FeedClient, signIn, type NotificationFrame } from '../helpers/clients.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

const CURSOR = /^[0-9a-f]{8}\.\d+\.\d+$/

async function follow (app: FastifyInstance, token: string, followeeId: string): Promise<{ id: string }> {
  const response = await app.inject({ method: 'POST', url: '/api/follows', headers: { authorization: `Bearer ${token}` }, payload: { followeeId } })
  if (response.statusCode !== 202) throw new Error(`follow answered ${response.statusCode}: ${response.body}`)
  return response.json<{ notification: { id: string } }>().notification
}

async function cursors (app: FastifyInstance, token: string): Promise<Array<{ id: string, cursor: string, seq: number }>> {
  const response = await app.inject({ method: 'GET', url: '/api/notifications?limit=100', headers: { authorization: `Bearer ${token}` } })
  return response.json<{ items: Array<{ id: string, cursor: string, seq: number }> }>().items.reverse()
}

t.test('/ws refuses a missing or bad token with 401 before the upgrade', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  await t.rejects(app.injectWS('/ws'), { message: 'Unexpected server response: 401' }, 'no token')
  await t.rejects(app.injectWS('/ws?token=garbage'), { message: 'Unexpected server response: 401' }, 'a bad token')
  await t.rejects(app.injectWS('/ws', { headers: { authorization: 'Bearer garbage' } }), { message: 'Unexpected server response: 401' }, 'a bad header token')
  const plain = await app.inject({ method: 'GET', url: '/ws' })
  t.equal(plain.statusCode, 401)
  t.match(plain.json(), { statusCode: 401, code: 'UNAUTHORIZED' })
  const upgrade = await app.inject({ method: 'GET', url: '/ws?token=garbage', headers: { connection: 'upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } })
  t.equal(upgrade.statusCode, 401)
  t.equal(upgrade.json().code, 'UNAUTHORIZED')
  t.equal(app.hasDecorator('injectWS'), true)
})

t.test('/ws refuses a malformed since with 400', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const token = await signIn(app, '2')
  await t.rejects(app.injectWS(`/ws?token=${token}&since=abc`), { message: 'Unexpected server response: 400' })
  await t.rejects(app.injectWS(`/ws?token=${token}&other=1`), { message: 'Unexpected server response: 400' })
})

t.test('/ws: ready, then live notifications to every tab of the recipient only', async (t) => {
  const { app, services } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const emma = await signIn(app, '1')
  const bruno = await signIn(app, '2')
  const brunoTabs = [await FeedClient.inject(t, app, `/ws?token=${bruno}`), await FeedClient.inject(t, app, '/ws', { authorization: `Bearer ${bruno}` })]
  const emmaTab = await FeedClient.inject(t, app, `/ws?token=${emma}`)

  for (const tab of brunoTabs) t.match(await tab.next(), { type: 'ready', user: { id: '2', name: 'Bruno' }, unread: 0, cursor: CURSOR, rev: 0, pingMs: 30_000 })
  t.match(await emmaTab.next(), { type: 'ready', user: { id: '1', name: 'Emma' }, unread: 0, cursor: CURSOR })
  t.equal(services.hub.connectionsOf('2'), 2)

  const notification = await follow(app, emma, '2')
  for (const tab of brunoTabs) {
    const frame = await tab.next() as NotificationFrame
    t.equal(frame.type, 'notification')
    t.same(frame.notification, notification, 'the frame carries the notification the POST answered with')
    t.match(frame.cursor, CURSOR)
    t.equal(frame.seq, 1, 'the first of Bruno\'s feed')
    t.equal(frame.unread, 1, 'with the unread count')
    t.equal(frame.rev, 0, 'as of the feed\'s read-state rev 0')
    t.same(Object.keys(frame), ['type', 'notification', 'cursor', 'seq', 'unread', 'rev', 'group'], 'and the group it joined (follows group)')
  }

  // Had Emma's tab got Bruno's notification, it would come before this one.
  const back = await follow(app, bruno, '1')
  const frame = await emmaTab.next() as NotificationFrame
  t.equal(frame.type, 'notification')
  t.equal(frame.notification.id, back.id, 'Emma\'s first frame after ready is her own notification')
  t.equal(frame.unread, 1)
  t.equal(emmaTab.queued, 0, 'one frame per notification')
  t.equal(brunoTabs[0]!.queued, 0, 'Bruno did not get Emma\'s notification')
})

t.test('/ws?since= catches up from the cursor, then says synced, then goes live', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const emma = await signIn(app, '1')
  const bruno = await signIn(app, '2')
  const sent = [await follow(app, emma, '2'), await follow(app, emma, '2'), await follow(app, emma, '2')]
  const items = await cursors(app, bruno)
  t.same(items.map(({ id }) => id), sent.map(({ id }) => id))

  const feed = await FeedClient.inject(t, app, `/ws?token=${bruno}&since=${items[0]!.cursor}`)
  t.match(await feed.next(), { type: 'ready', user: { id: '2', name: 'Bruno' }, unread: 3, cursor: CURSOR })
  for (const item of items.slice(1)) {
    const frame = await feed.next() as NotificationFrame
    t.equal(frame.type, 'notification')
    t.equal(frame.notification.id, item.id)
    t.equal(frame.cursor, `${item.cursor}.0`, 'history\'s cursor, at the rev the replay starts from: a history cursor resumes no state change')
    t.equal(frame.seq, item.seq, 'with its place in the feed')
  }
  t.same(await feed.next(), { type: 'synced', cursor: `${items[2]!.cursor}.0`, seq: 3, rev: 0 })

  const live = await follow(app, emma, '2')
  const frame = await feed.next() as NotificationFrame
  t.equal(frame.notification.id, live.id, 'live after synced')
  t.equal(frame.seq, 4, 'the next seq')
  t.equal(frame.unread, 4)
})

t.test('/ws?since=0 replays everything; since= the newest cursor replays nothing', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const emma = await signIn(app, '1')
  const bruno = await signIn(app, '2')
  await follow(app, emma, '2')
  await follow(app, emma, '2')
  const items = await cursors(app, bruno)

  const all = await FeedClient.inject(t, app, `/ws?token=${bruno}&since=0`)
  t.equal((await all.next()).type, 'ready')
  t.equal(((await all.next()) as NotificationFrame).cursor, `${items[0]!.cursor}.0`)
  t.equal(((await all.next()) as NotificationFrame).cursor, `${items[1]!.cursor}.0`)
  t.same(await all.next(), { type: 'synced', cursor: `${items[1]!.cursor}.0`, seq: 2, rev: 0 })

  const none = await FeedClient.inject(t, app, `/ws?token=${bruno}&since=${items[1]!.cursor}`)
  t.equal((await none.next()).type, 'ready')
  t.same(await none.next(), { type: 'synced', cursor: `${items[1]!.cursor}.0`, seq: 2, rev: 0 })
})

for (const [what, since] of [
  ['a cursor from the future', (epoch: string) => `${epoch}.999999999`],
  ['a cursor from another epoch', () => '0badc0de.1'],
  ['a cursor of the old format (one global number)', () => '1']
] as const) {
  t.test(`/ws?since= ${what}: synced with reset and the newest cursor, then live`, async (t) => {
    const { app, services } = await startGateway(t, { bus: new FakeBus(), listen: false })
    const emma = await signIn(app, '1')
    const bruno = await signIn(app, '2')
    await follow(app, emma, '2')
    const [newest] = await cursors(app, bruno)
    const feed = await FeedClient.inject(t, app, `/ws?token=${bruno}&since=${since(services.inbox.epoch)}`)
    t.match(await feed.next(), { type: 'ready', user: { id: '2', name: 'Bruno' }, unread: 1, cursor: newest!.cursor, seq: 1 })
    t.same(await feed.next(), { type: 'synced', cursor: `${newest!.cursor}.0`, seq: 1, rev: 0, reset: true })
    const live = await follow(app, emma, '2')
    const frame = (await feed.next()) as NotificationFrame
    t.equal(frame.notification.id, live.id, 'then live')
    t.equal(frame.seq, 2)
  })
}

t.test('/ws: reading elsewhere sends the new unread count to every tab', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const emma = await signIn(app, '1')
  const bruno = await signIn(app, '2')
  await follow(app, emma, '2')
  await follow(app, emma, '2')
  const feed = await FeedClient.inject(t, app, `/ws?token=${bruno}`)
  t.match(await feed.next(), { type: 'ready', user: { id: '2', name: 'Bruno' }, unread: 2, cursor: CURSOR })
  const [first] = await cursors(app, bruno)
  const response = await app.inject({ method: 'POST', url: '/api/notifications/read', headers: { authorization: `Bearer ${bruno}` }, payload: { upTo: first!.cursor } })
  t.same(response.json(), { unread: 1, unseen: 2, rev: 1 })
  t.same(await feed.next(), { type: 'state', rev: 1, seq: 2, changes: [{ op: 'read', upToSeq: 1 }], unread: 1, unseen: 2, cursor: `${first!.cursor.split('.')[0]!}.2.1` },
    'the state change, with its rev and what it changed')
  t.same(await feed.next(), { type: 'unread', unread: 1, rev: 1 }, 'then the count alone, for clients that know no state frame, with the rev of the read mark to order it against other counts')
})

t.test('/ws: an open socket does not keep its upgrade\'s request alive (nor, through it, Fastify\'s request, reply and logger)', async (t) => {
  const { app, url, services } = await startGateway(t, { bus: new FakeBus() })
  const bruno = await signIn(app, '2')
  let upgrade: WeakRef<IncomingMessage> | undefined
  app.server.once('upgrade', (request: IncomingMessage) => { upgrade = new WeakRef(request) })
  const feed = await FeedClient.open(t, url, `/ws?token=${bruno}`)
  t.equal((await feed.next()).type, 'ready')
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  for (let i = 0; i < 10 && upgrade?.deref() !== undefined; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    gc()
  }
  t.equal(services.hub.connectionCount, 1, 'the socket is still open')
  t.ok(upgrade !== undefined && upgrade.deref() === undefined, 'its upgrade request was collected')
})

t.test('/ws: a client that sends a message is closed with 4500', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const bruno = await signIn(app, '2')
  const feed = await FeedClient.inject(t, app, `/ws?token=${bruno}`)
  t.equal((await feed.next()).type, 'ready')
  feed.socket.send('hello')
  const closed = await feed.closed
  t.equal(closed.code, 4500)
  t.match(closed.reason, /must not send/)
})

t.test('/ws: the socket is closed with 4001 when its token expires', async (t) => {
  const secret = 'a-dev-secret-for-this-test-32-characters'
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { AUTH_SECRET: secret } })
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('2').setIssuer('kafka-notify-dev')
    .setExpirationTime(Math.floor(Date.now() / 1000) + 1).sign(new TextEncoder().encode(secret))
  const feed = await FeedClient.inject(t, app, `/ws?token=${token}`)
  t.equal((await feed.next()).type, 'ready')
  // Bounded, and held open meanwhile: the expiry timer does not keep a process alive, and an
  // injected socket has no connection that would.
  const closed = await within(feed.closed, 5000, () => { throw new Error('not closed within 5 s of the token\'s expiry') })
  t.equal(closed.code, 4001)
})

t.test('/ws: closing the gateway closes the sockets with 1001', async (t) => {
  const { app, close } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const bruno = await signIn(app, '2')
  const feed = await FeedClient.inject(t, app, `/ws?token=${bruno}`)
  t.equal((await feed.next()).type, 'ready')
  await close()
  t.equal((await feed.closed).code, 1001)
})

t.test('/ws without an upgrade answers 426 UPGRADE_REQUIRED in the error shape', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const bruno = await signIn(app, '2')
  const response = await app.inject({ method: 'GET', url: `/ws?token=${bruno}` })
  t.equal(response.statusCode, 426)
  t.match(response.json(), { statusCode: 426, code: 'UPGRADE_REQUIRED', message: /WebSocket/ })
})
