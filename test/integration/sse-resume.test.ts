import t from 'tap'
import { encodeNotification } from '../../server/kafka/record.js'
import { messageNotification, type Notification } from '../../server/notification.js'
import { FeedClient, follow, signIn, type NotificationFrame } from '../helpers/clients.js'
import { startSharedServices, waitReady } from '../helpers/feed-checks.js'
import { startGateway } from '../helpers/gateway.js'
import { rawProducer } from '../helpers/kafka.js'
import { EventStreamClient } from '../helpers/sse-client.js'

const BOUND_MS = 30_000
const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }

async function followed (url: string, token: string, followeeId: string): Promise<string> {
  const response = await follow(url, token, followeeId)
  if (response.status !== 202) throw new Error(`follow answered ${response.status}: ${await response.text()}`)
  return ((await response.json()) as { notification: { id: string } }).notification.id
}

async function ticket (url: string, token: string): Promise<string> {
  const response = await fetch(`${url}/api/tickets`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  if (response.status !== 201) throw new Error(`tickets answered ${response.status}: ${await response.text()}`)
  return ((await response.json()) as { ticket: string }).ticket
}

/** Reads notification events until `count` came; returns their notifications' ids, seqs and event ids. */
async function notifications (stream: EventStreamClient, count: number): Promise<Array<{ id: string, seq: number, eventId: string | undefined }>> {
  const got: Array<{ id: string, seq: number, eventId: string | undefined }> = []
  while (got.length < count) {
    const event = await stream.nextOf('notification', BOUND_MS)
    const frame = event.frame as NotificationFrame
    got.push({ id: frame.notification.id, seq: frame.seq, eventId: event.id })
  }
  return got
}

// Issue 16, section 4: an EventSource that lost its stream reconnects on its own with the last id it
// saw as Last-Event-ID, and must get what it missed from the inbox, then `synced`, then live.
t.test('on the real broker: a stream that resumes with Last-Event-ID gets the notifications it missed, in order, then synced, then live', async (t) => {
  const gateway = await startGateway(t)
  await waitReady(gateway.url)
  const [emmaToken, brunoToken] = await Promise.all([signIn(gateway.url, emma.id), signIn(gateway.url, bruno.id)])
  // A WebSocket that stays open says when each notification was stored and pushed.
  const watcher = await FeedClient.connect(gateway.url, brunoToken)
  t.teardown(() => watcher.close())
  await watcher.nextOf('ready')

  const stream = await EventStreamClient.connect(t, gateway.url, `/sse?ticket=${await ticket(gateway.url, brunoToken)}`)
  t.equal((await stream.next(BOUND_MS)).event, 'ready')
  const first = await followed(gateway.url, emmaToken, bruno.id)
  const [seen] = await notifications(stream, 1)
  t.same(seen, { id: first, seq: 1, eventId: (await watcher.nextOf('notification')).cursor }, 'live, with its cursor as the event id')
  stream.close()
  await stream.ended

  // Missed while away: two follows, and a record another producer wrote with line breaks in its JSON.
  const missed = [await followed(gateway.url, emmaToken, bruno.id), await followed(gateway.url, emmaToken, bruno.id)]
  for (const id of missed) t.equal((await watcher.nextOf('notification', BOUND_MS)).notification.id, id, `${id} was stored`)
  const producer = await rawProducer(t)
  const pretty: Notification = messageNotification(emma, bruno, 'written by another service,\nover two lines')
  await producer.send({ topic: gateway.config.kafka.topic, acks: -1, messages: [{ ...encodeNotification(pretty), value: JSON.stringify(pretty, null, 2) }] })
  t.equal((await watcher.nextOf('notification', BOUND_MS)).notification.id, pretty.id, 'the pretty-printed record was stored')
  missed.push(pretty.id)

  const resumed = await EventStreamClient.connect(t, gateway.url, `/sse?ticket=${await ticket(gateway.url, brunoToken)}`, { 'last-event-id': stream.lastEventId! })
  const ready = await resumed.next(BOUND_MS)
  t.match(ready, { event: 'ready', id: seen!.eventId, frame: { type: 'ready', seq: 4, unread: 4 } })
  const replayed = await notifications(resumed, 3)
  t.same(replayed.map(({ id, seq }) => ({ id, seq })), missed.map((id, i) => ({ id, seq: i + 2 })), 'what it missed, oldest first, each once')
  t.same((resumed.events.find(({ frame }) => frame.type === 'notification' && frame.notification.id === pretty.id)?.frame as NotificationFrame | undefined)?.notification, pretty,
    'the pretty-printed record reads back whole')
  const synced = await resumed.next(BOUND_MS)
  t.same({ event: synced.event, id: synced.id, frame: synced.frame }, { event: 'synced', id: replayed[2]!.eventId, frame: { type: 'synced', cursor: replayed[2]!.eventId, seq: 4, rev: 0 } })

  const live = await followed(gateway.url, emmaToken, bruno.id)
  t.match(await notifications(resumed, 1), [{ id: live, seq: 5 }], 'then live')
})

// Across gateways the stream is just another socket of the hub: frames reach it through the Redis
// fan-out from whichever gateway consumed the record, and it resumes on another gateway from the
// shared PostgreSQL inbox.
t.test('two gateways, PostgreSQL and Redis: a stream on one gets follows POSTed to the other, then resumes on the other with Last-Event-ID', async (t) => {
  const shared = await startSharedServices(t)
  if (shared === undefined) return
  const a = await startGateway(t, { env: shared.env })
  const b = await startGateway(t, { env: shared.env })
  await Promise.all([waitReady(a.url), waitReady(b.url)])
  const [emmaToken, brunoToken] = await Promise.all([signIn(a.url, emma.id), signIn(a.url, bruno.id)])

  // A ticket issued by one gateway opens a stream on the other (tickets are in Redis).
  const onA = await EventStreamClient.connect(t, a.url, `/sse?ticket=${await ticket(b.url, emmaToken)}`)
  t.equal((await onA.next(BOUND_MS)).event, 'ready')
  const live: string[] = []
  for (let i = 0; i < 6; i++) live.push(await followed(i % 2 === 0 ? b.url : a.url, brunoToken, emma.id))
  const got = await notifications(onA, live.length)
  t.same(got.map(({ id, seq }) => ({ id, seq })), live.map((id, i) => ({ id, seq: i + 1 })), 'every follow, from whichever gateway consumed it, once, in seq order')
  onA.close()
  await onA.ended

  const missed: string[] = []
  for (let i = 0; i < 4; i++) missed.push(await followed(i % 2 === 0 ? a.url : b.url, brunoToken, emma.id))
  // Resuming as soon as the POSTs are accepted: what is not stored yet comes live after synced.
  const onB = await EventStreamClient.connect(t, b.url, '/sse', { authorization: `Bearer ${emmaToken}`, 'last-event-id': got.at(-1)!.eventId! })
  t.match(await onB.next(BOUND_MS), { event: 'ready', id: got.at(-1)!.eventId })
  const resumed = await notifications(onB, missed.length)
  t.same(resumed.map(({ id, seq }) => ({ id, seq })), missed.map((id, i) => ({ id, seq: live.length + i + 1 })), 'the missed ones, once each, in order')
  // The catch-up's state-log read comes between the replayed notifications and synced: wait for it.
  await t.resolves(onB.until('synced', () => onB.events.some(({ event }) => event === 'synced'), BOUND_MS),
    'synced comes (before, or among, the live ones)')
  t.notOk(onB.events.some(({ frame }) => frame.type === 'synced' && frame.reset === true), 'no reset: the shared inbox continues the cursor')
})
