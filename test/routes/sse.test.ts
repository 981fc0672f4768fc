import t, { type Test } from 'tap'
import { SignJWT } from 'jose'
import { notificationFrame } from '../../server/feed/frames.js'
import { encodeCursor } from '../../server/feed/cursor.js'
import { followNotification } from '../../server/notification.js'
import { FeedClient, follow, signIn, type NotificationFrame } from '../helpers/clients.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway, type Gateway, type GatewayOptions } from '../helpers/gateway.js'
import { EventStreamClient } from '../helpers/sse-client.js'

const CURSOR = /^[0-9a-f]{8}\.\d+\.\d+$/

async function start (t: Test, options: GatewayOptions = {}): Promise<Gateway & { emma: string, bruno: string }> {
  const gateway = await startGateway(t, { bus: new FakeBus(), ...options })
  return { ...gateway, emma: await signIn(gateway.url, '1'), bruno: await signIn(gateway.url, '2') }
}

async function followed (url: string, token: string, followeeId: string): Promise<{ id: string }> {
  const response = await follow(url, token, followeeId)
  if (response.status !== 202) throw new Error(`follow answered ${response.status}: ${await response.text()}`)
  return ((await response.json()) as { notification: { id: string } }).notification
}

async function history (url: string, token: string): Promise<Array<{ id: string, cursor: string, seq: number }>> {
  const response = await fetch(`${url}/api/notifications?limit=100`, { headers: { authorization: `Bearer ${token}` } })
  return ((await response.json()) as { items: Array<{ id: string, cursor: string, seq: number }> }).items.reverse()
}

async function ticket (url: string, token: string): Promise<string> {
  const response = await fetch(`${url}/api/tickets`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  return ((await response.json()) as { ticket: string }).ticket
}

t.test('/sse refuses bad requests before the stream, with the JSON errors of every route', async (t) => {
  const { url, bruno } = await start(t)
  const refusals: Array<[string, string, Record<string, string>, number, string, RegExp]> = [
    ['no token', '/sse', {}, 401, 'UNAUTHORIZED', /bearer token/],
    ['a bad token', '/sse?token=garbage', {}, 401, 'UNAUTHORIZED', /./],
    ['a bad header token', '/sse', { authorization: 'Bearer garbage' }, 401, 'UNAUTHORIZED', /./],
    ['an unknown ticket', `/sse?ticket=${'A'.repeat(43)}`, {}, 401, 'UNAUTHORIZED', /querystring\/ticket/],
    ['a malformed since', `/sse?token=${bruno}&since=abc`, {}, 400, 'INVALID_QUERY', /querystring\/since/],
    ['an unknown parameter', `/sse?token=${bruno}&other=1`, {}, 400, 'INVALID_QUERY', /other/],
    ['a malformed Last-Event-ID', `/sse?token=${bruno}`, { 'last-event-id': 'abc' }, 400, 'INVALID_HEADER', /headers\/last-event-id/],
    ['a foreign Origin', `/sse?token=${bruno}`, { origin: 'https://evil.example' }, 403, 'FORBIDDEN', /may not open \/sse/]
  ]
  for (const [what, path, headers, status, code, message] of refusals) {
    const answer = await EventStreamClient.open(t, url, path, headers)
    t.equal(answer.opened, false, `${what}: no stream`)
    if (answer.opened) continue
    t.equal(answer.status, status, what)
    t.match(answer.body, { statusCode: status, code, message }, what)
    t.match(answer.headers['content-type'], /^application\/json/, `${what}: a JSON answer`)
  }
  t.equal((await fetch(`${url}/sse?token=${bruno}`, { method: 'HEAD' })).status, 404, 'HEAD opens no stream')
})

t.test('/sse opens with a one-time ticket, an Authorization header or ?token=; a ticket is spent', async (t) => {
  const { url, bruno } = await start(t)
  const spent = await ticket(url, bruno)
  for (const [what, path, headers] of [
    ['a ticket', `/sse?ticket=${spent}`, {}],
    ['the Authorization header', '/sse', { authorization: `Bearer ${bruno}` }],
    ['?token=', `/sse?token=${bruno}`, {}]
  ] as Array<[string, string, Record<string, string>]>) {
    const stream = await EventStreamClient.connect(t, url, path, { ...headers, 'accept-encoding': 'gzip, deflate, br' })
    const { headers: answered } = stream.response
    t.equal(answered['content-type'], 'text/event-stream; charset=utf-8', `${what}: an event stream`)
    t.equal(answered['cache-control'], 'no-cache')
    t.equal(answered['x-accel-buffering'], 'no', 'that proxies do not buffer')
    t.equal(answered['content-encoding'], undefined, 'uncompressed, though the client accepts gzip')
    t.match((await stream.next()).frame, { type: 'ready', user: { id: '2', name: 'Bruno' } }, `${what}: Bruno's feed`)
    stream.close()
  }
  const again = await EventStreamClient.open(t, url, `/sse?ticket=${spent}`)
  t.match(again, { opened: false, status: 401, body: { code: 'UNAUTHORIZED' } }, 'a used ticket opens nothing')
})

t.test('/sse: the frames of /ws, one event each, to every tab of the recipient only', async (t) => {
  const { url, emma, bruno } = await start(t)
  const brunoStream = await EventStreamClient.connect(t, url, `/sse?token=${bruno}`)
  const brunoSocket = await FeedClient.connect(url, bruno)
  t.teardown(() => brunoSocket.close())
  const emmaStream = await EventStreamClient.connect(t, url, '/sse', { authorization: `Bearer ${emma}` })

  const ready = await brunoStream.next()
  t.equal(ready.event, 'ready', 'the event is named by the frame type')
  t.same(ready.frame, await brunoSocket.next(), 'the ready frame of /ws')
  t.match(ready.frame, { type: 'ready', user: { id: '2' }, unread: 0, cursor: CURSOR, seq: 0, rev: 0, pingMs: 30_000 })
  t.equal(ready.id, (ready.frame as { cursor: string }).cursor, 'without a resume point, ready carries the cursor to resume from')
  t.match((await emmaStream.next()).frame, { type: 'ready', user: { id: '1' } })

  const notification = await followed(url, emma, '2')
  const event = await brunoStream.next()
  const frame = event.frame as NotificationFrame
  t.equal(event.event, 'notification')
  t.same(frame, await brunoSocket.next(), 'the same frame as the WebSocket got')
  t.same(frame.notification, notification, 'the notification the POST answered with')
  t.match(frame, { seq: 1, unread: 1, rev: 0, cursor: CURSOR })
  t.equal(event.id, frame.cursor, 'with the cursor as its id')

  const back = await followed(url, bruno, '1')
  const emmaEvent = await emmaStream.next()
  t.equal((emmaEvent.frame as NotificationFrame).notification.id, back.id, 'Emma\'s first event after ready is her own notification')
  t.equal(emmaStream.queued, 0, 'and the only one')
  t.equal(brunoStream.queued, 0, 'Bruno did not get Emma\'s notification')

  const [first] = await history(url, bruno)
  await fetch(`${url}/api/notifications/read`, { method: 'POST', headers: { authorization: `Bearer ${bruno}`, 'content-type': 'application/json' }, body: JSON.stringify({ upTo: first!.cursor }) })
  const state = await brunoStream.next()
  t.match({ event: state.event, id: state.id, frame: state.frame }, { event: 'state', id: (state.frame as { cursor: string }).cursor, frame: { type: 'state', rev: 1, unread: 0, changes: [{ op: 'read', upToSeq: 1 }] } }, 'a state event, with its cursor as id')
  const unread = await brunoStream.next()
  t.same({ event: unread.event, id: unread.id, frame: unread.frame }, { event: 'unread', id: undefined, frame: { type: 'unread', unread: 0, rev: 1 } }, 'then an unread event (for clients that know no state), without an id')
})

t.test('/sse resumes after Last-Event-ID (or since): the missed notifications, then synced, then live', async (t) => {
  const { url, emma, bruno } = await start(t)
  const sent = [await followed(url, emma, '2'), await followed(url, emma, '2'), await followed(url, emma, '2')]
  const items = await history(url, bruno)
  t.same(items.map(({ id }) => id), sent.map(({ id }) => id))

  // EventSource keeps the URL it was opened with and sends the last id it saw: the header wins.
  const stream = await EventStreamClient.connect(t, url, `/sse?token=${bruno}&since=0`, { 'last-event-id': items[0]!.cursor })
  const ready = await stream.next()
  t.match(ready.frame, { type: 'ready', unread: 3, cursor: items[2]!.cursor, seq: 3 })
  t.equal(ready.id, items[0]!.cursor, 'ready\'s id is the resume point, not the newest cursor: a drop during the replay resumes from there')
  for (const item of items.slice(1)) {
    const event = await stream.next()
    t.equal(event.event, 'notification')
    t.equal((event.frame as NotificationFrame).notification.id, item.id, `replays seq ${item.seq}`)
    t.equal(event.id, `${item.cursor}.0`, 'its cursor, at the state\'s rev the client resumed from')
  }
  const synced = await stream.next()
  t.same({ event: synced.event, id: synced.id, frame: synced.frame }, { event: 'synced', id: `${items[2]!.cursor}.0`, frame: { type: 'synced', cursor: `${items[2]!.cursor}.0`, seq: 3, rev: 0 } })
  const live = await followed(url, emma, '2')
  const event = await stream.next()
  t.match(event.frame, { type: 'notification', notification: { id: live.id }, seq: 4, unread: 4 }, 'live after synced')
  stream.close()

  const bySince = await EventStreamClient.connect(t, url, `/sse?token=${bruno}&since=${items[1]!.cursor}`)
  t.equal((await bySince.next()).id, items[1]!.cursor, '?since= resumes the same way')
  t.same([await bySince.next(), await bySince.next()].map(({ id }) => id), [`${items[2]!.cursor}.0`, event.id])
  t.same((await bySince.next()).frame, { type: 'synced', cursor: event.id, seq: 4, rev: 0 })
})

t.test('/sse: a stream that drops resumes from the last id it got, as EventSource does, with nothing lost', async (t) => {
  const { url, emma, bruno } = await start(t)
  const first = await EventStreamClient.connect(t, url, `/sse?token=${bruno}`)
  t.equal((await first.next()).event, 'ready')
  first.close()
  await first.ended
  const missed = [await followed(url, emma, '2'), await followed(url, emma, '2')]
  const again = await EventStreamClient.connect(t, url, `/sse?token=${bruno}`, { 'last-event-id': first.lastEventId! })
  t.equal((await again.next()).event, 'ready')
  const replayed = [await again.next(), await again.next()]
  t.same(replayed.map(({ frame }) => (frame as NotificationFrame).notification.id), missed.map(({ id }) => id), 'what came while it was away')
  t.match((await again.next()).frame, { type: 'synced', seq: 2 })
  t.notOk('reset' in (again.events.at(-1)?.frame ?? {}), 'no reset: the id was a cursor the feed continues from')
})

t.test('/sse and /ws share the connection limits: per user and per address, over them the stream gets a close event 4029', async (t) => {
  const { url, emma, bruno } = await start(t, { env: { WS_MAX_CONNECTIONS_PER_USER: '2', WS_MAX_CONNECTIONS_PER_IP: '3' } })
  const socket = await FeedClient.connect(url, bruno)
  t.teardown(() => socket.close())
  const stream = await EventStreamClient.connect(t, url, `/sse?token=${bruno}`)
  t.equal((await stream.next()).event, 'ready')
  const third = await EventStreamClient.connect(t, url, `/sse?token=${bruno}`)
  const refused = await third.next()
  t.same({ event: refused.event, frame: refused.frame }, { event: 'close', frame: { type: 'close', code: 4029, reason: 'too many connections for this user (at most 2)' } })
  await third.ended
  t.equal(third.queued, 0, 'the last event: the stream ends')

  const emmaStream = await EventStreamClient.connect(t, url, `/sse?token=${emma}`)
  t.equal((await emmaStream.next()).event, 'ready', 'Emma has a budget of her own, and the address its third connection')
  const fourth = await EventStreamClient.connect(t, url, `/sse?token=${emma}`)
  t.match((await fourth.next()).frame, { type: 'close', code: 4029, reason: 'too many connections from this address (at most 3)' })

  stream.close()
  await stream.ended
  const replaced = await EventStreamClient.connect(t, url, `/sse?token=${emma}`)
  t.equal((await replaced.next()).event, 'ready', 'a closed stream gives its place back')
})

t.test('/sse: a comment line every WS_HEARTBEAT_MS, besides the ping events', async (t) => {
  const { url, bruno } = await start(t, { env: { WS_HEARTBEAT_MS: '1000' } })
  const stream = await EventStreamClient.connect(t, url, `/sse?token=${bruno}`)
  t.match((await stream.next()).frame, { type: 'ready', pingMs: 1000 })
  await stream.until('two heartbeats', () => stream.comments >= 2, 5000)
  t.match(stream.raw, /\n\n: heartbeat\n\n/, 'a comment line, as its own block')
  const ping = await stream.nextOf('ping', 5000)
  t.same({ id: ping.id, frame: ping.frame }, { id: undefined, frame: { type: 'ping', seq: 0, rev: 0, unread: 0 } })
  t.equal(stream.response.closed, false, 'a peer that reads is kept')
})

t.test('/sse: the stream gets a close event 4001 when its token expires', async (t) => {
  const secret = 'a-dev-secret-for-this-test-32-characters'
  const { url } = await start(t, { env: { AUTH_SECRET: secret } })
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('2').setIssuer('kafka-notify-dev')
    .setExpirationTime(Math.floor(Date.now() / 1000) + 1).sign(new TextEncoder().encode(secret))
  const stream = await EventStreamClient.connect(t, url, `/sse?token=${token}`)
  t.equal((await stream.next()).event, 'ready')
  t.match((await stream.nextOf('close')).frame, { type: 'close', code: 4001, reason: 'token expired' })
  await stream.ended
})

t.test('/sse: closing the gateway ends every stream with a close event 1001, and does not wait for them', async (t) => {
  const { url, bruno, close } = await start(t)
  const streams = [await EventStreamClient.connect(t, url, `/sse?token=${bruno}`), await EventStreamClient.connect(t, url, `/sse?token=${bruno}`)]
  for (const stream of streams) t.equal((await stream.next()).event, 'ready')
  await close()
  for (const stream of streams) {
    t.same((await stream.nextOf('close')).frame, { type: 'close', code: 1001, reason: 'server shutting down' })
    await stream.ended
  }
})

t.test('/sse: a client that stops reading is dropped at WS_MAX_BUFFERED_BYTES, counted as slow, told 4008 if it reads again; a reading one is kept', async (t) => {
  const { url, bruno, services } = await start(t, { env: { WS_MAX_BUFFERED_BYTES: '65536' } })
  const slow = await EventStreamClient.connect(t, url, `/sse?token=${bruno}`)
  const healthy = await EventStreamClient.connect(t, url, `/sse?token=${bruno}`)
  for (const stream of [slow, healthy]) t.equal((await stream.next()).event, 'ready')
  slow.response.pause()
  // ~16 KiB frames, one per turn of the event loop, until loopback's socket buffers and the bound are full.
  const notification = JSON.stringify({ ...followNotification({ id: '1', name: 'Emma' }, { id: '2', name: 'Bruno' }), message: 'x'.repeat(16 * 1024) })
  let seq = 0
  while (services.hub.connectionsOf('2') === 2 && seq < 4000) {
    seq++
    services.relay.deliver({ userId: '2', text: notificationFrame(notification, encodeCursor(services.inbox.epoch, seq), seq), seq })
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(services.hub.connectionsOf('2'), 1, `one of the two dropped by the hub, after ${seq} frames`)
  t.ok(seq * notification.length > 4 * 65536, 'once far more than the bound was sent: the socket buffers took their part first')
  const dropped = (await services.metrics.disconnects.get()).values.find(({ labels }) => labels.why === 'slow')
  t.equal(dropped?.value, 1, 'counted once, as slow')
  await healthy.until('every frame', () => healthy.events.filter(({ event }) => event === 'notification').length === seq)
  t.equal(healthy.response.closed, false, 'the reading client is kept, and got every frame')

  slow.response.resume()
  await slow.ended
  const seqs = slow.events.flatMap(({ frame }) => frame.type === 'notification' ? [frame.seq] : [])
  t.same(seqs, seqs.map((_, i) => i + 1), `what reached the slow one is the feed in order (${seqs.length} frames)`)
  const last = slow.events.at(-1)?.frame
  if (last?.type === 'close') t.same(last, { type: 'close', code: 4008, reason: 'slow client: send buffer full' }, 'the close event queued behind the unread frames')
})
