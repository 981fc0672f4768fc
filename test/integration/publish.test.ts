// "Notifications for any app", tried as a new team would: jwt mode with HS256 tokens signed by a
// script, users no directory lists, a backend publishing its own notification type.
import t, { type Test } from 'tap'
import { SignJWT } from 'jose'
import { FeedClient, type NotificationFrame } from '../helpers/clients.js'
import { startSharedServices, waitReady } from '../helpers/feed-checks.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { rawProducer, readTopic, recordCount } from '../helpers/kafka.js'

const SECRET = 'our-identity-service-signs-with-this-secret'
/** The identity service names this gateway as its tokens' audience. */
const AUDIENCE = 'notify.example.com'

/** What the team's script does: an HS256 token for `sub`, a service's with `scope`. */
async function token (sub: string, claims: Record<string, unknown> = {}): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRET))
}

const JWT_MODE = { AUTH_MODE: 'jwt', AUTH_SECRET: SECRET, AUTH_AUDIENCE: AUDIENCE }

const reply = {
  recipients: ['u-7f3a', 'u-90b1'],
  type: 'comment.reply',
  message: 'Ana replied to your comment: "Great point!"',
  url: 'https://app.example.com/posts/42#comment-7',
  data: { postId: 42, commentId: 7, excerpt: 'Great point!', thread: { depth: 2, participants: ['u-1', 'u-7f3a'] } },
  actor: { id: 'u-1', name: 'Ana', avatarUrl: 'https://cdn.example.com/avatars/u-1.png' }
}

interface Accepted { notifications: Array<{ id: string, userId: string }> }

async function publish (url: string, bearer: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(`${url}/api/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}`, ...headers },
    body: JSON.stringify(body)
  })
}

async function openTab (t: Test, url: string, bearer: string): Promise<FeedClient> {
  const tab = await FeedClient.connect(url, bearer)
  t.teardown(() => tab.close())
  return tab
}

/** The notification as the backend described it, for recipient `userId`. */
function asSent (userId: string): Record<string, unknown> {
  const { recipients: _, ...content } = reply
  return { ...content, userId }
}

t.test('a backend publishes comment.reply to two users no directory lists: both get it live on every open tab, every field as sent, and in history', async (t) => {
  const gateway = await startGateway(t, { env: JWT_MODE })
  const [ana, bo] = [await token('u-7f3a', { name: 'Ana Lima' }), await token('u-90b1')]
  const tabs = { ana: await openTab(t, gateway.url, ana), anaAgain: await openTab(t, gateway.url, ana), bo: await openTab(t, gateway.url, bo) }
  t.match(await tabs.ana.next(), { type: 'ready', user: { id: 'u-7f3a', name: 'Ana Lima' } }, 'the token is the user: its name claim names her')
  t.match(await tabs.bo.next(), { type: 'ready', user: { id: 'u-90b1', name: 'u-90b1' } }, 'no name claim, no directory: the id')
  t.equal((await tabs.anaAgain.next()).type, 'ready')

  const response = await publish(gateway.url, await token('comments-backend', { scope: 'notify:service' }), reply)
  t.equal(response.status, 202)
  const { notifications } = await response.json() as Accepted
  t.same(notifications.map(({ userId }) => userId), ['u-7f3a', 'u-90b1'])

  for (const [name, tab, userId] of [['Ana\'s first tab', tabs.ana, 'u-7f3a'], ['Ana\'s second tab', tabs.anaAgain, 'u-7f3a'], ['Bo\'s tab', tabs.bo, 'u-90b1']] as const) {
    const frame = await tab.nextOf('notification')
    const { id, createdAt, ...rest } = frame.notification
    t.same(rest, asSent(userId), `${name}: every field as sent`)
    t.equal(id, notifications.find((sent) => sent.userId === userId)!.id, `${name}: the id the 202 named`)
    t.match(frame, { seq: 1, unread: 1 }, `${name}: the first of the feed`)
    t.match(createdAt, /^\d{4}-\d{2}-\d{2}T/)
  }

  const history = await (await fetch(`${gateway.url}/api/notifications`, { headers: { authorization: `Bearer ${bo}` } })).json() as { items: Array<Record<string, unknown>>, unread: number }
  t.equal(history.unread, 1)
  t.match(history.items, [{ ...asSent('u-90b1'), read: false, seq: 1 }], 'in history, every field as sent')
  t.same(history.items[0]!['data'], reply.data, 'data exactly, nested levels included')

  const [record] = await readTopic(t, gateway.config.kafka.topic, 2)
  t.equal(record?.headers?.['notification-version']?.toString(), '2', 'records of version 2 of the value')
  t.match(record?.key?.toString(), /^u-(7f3a|90b1)$/, 'keyed by the recipient')
})

t.test('a user token publishing gets 403, and nothing is produced', async (t) => {
  const gateway = await startGateway(t, { env: JWT_MODE })
  const bo = await token('u-90b1')
  const tab = await openTab(t, gateway.url, bo)
  t.equal((await tab.next()).type, 'ready')
  const response = await publish(gateway.url, await token('u-7f3a'), reply)
  t.equal(response.status, 403)
  t.match(await response.json(), { code: 'FORBIDDEN' })
  // A follow after it is the next thing Bo's feed gets: the refused publish produced nothing.
  const followed = await fetch(`${gateway.url}/api/follows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await token('u-7f3a')}` },
    body: JSON.stringify({ followeeId: 'u-90b1' })
  })
  t.equal(followed.status, 202, 'in jwt mode anyone may be followed')
  t.match((await tab.nextOf('notification')).notification, { type: 'follow', actor: { id: 'u-7f3a' } })
})

t.test('1,000 recipients in one request: every one stored once, and a retry with the same key adds nothing', async (t) => {
  const gateway = await startGateway(t, { env: JWT_MODE })
  const recipients = Array.from({ length: 1000 }, (_, i) => `member-${i}`)
  const service = await token('digest-backend', { scope: 'notify:service' })
  const watched = await openTab(t, gateway.url, await token('member-999'))
  t.equal((await watched.next()).type, 'ready')
  const body = { recipients, type: 'digest.weekly', message: 'Your weekly digest is ready.', data: { week: 48 } }
  const first = await publish(gateway.url, service, body, { 'idempotency-key': 'digest-48' })
  t.equal(first.status, 202)
  const retry = await publish(gateway.url, service, body, { 'idempotency-key': 'digest-48' })
  t.equal(retry.status, 202)
  t.equal(retry.headers.get('idempotent-replayed'), 'true')
  t.same(await retry.json(), await first.json(), 'the same notifications')
  const frame: NotificationFrame = await watched.nextOf('notification')
  t.match(frame, { seq: 1, notification: { userId: 'member-999', type: 'digest.weekly' } }, 'the last recipient got it')
  const { inbox } = gateway.services
  let stored = 0
  for (let attempt = 0; attempt < 100 && stored < recipients.length; attempt++) {
    stored = (await Promise.all(recipients.map(async (id) => (await inbox.feed(id)).newestSeq))).filter((seq) => seq === 1).length
    if (stored < recipients.length) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(stored, 1000, 'each of the 1,000 has exactly one notification (seq 1)')
  t.equal(await recordCount(gateway.config.kafka.topic), 1000, 'one record per recipient, none for the retry')
})

t.test('records in the Go tutorial\'s shape, produced to the topic, are message notifications from `from` to `to`', async (t) => {
  const gateway = await startGateway(t, { env: JWT_MODE })
  const emma = await openTab(t, gateway.url, await token('1'))
  t.match(await emma.next(), { type: 'ready', user: { id: '1', name: 'Emma' } })
  const producer = await rawProducer(t)
  const sentAt = Date.UTC(2026, 10, 27, 14, 0, 0, 0)
  // As the tutorial's producer writes them: numeric ids, the recipient's id as text for the key.
  await producer.send({
    topic: gateway.config.kafka.topic,
    messages: [
      { key: '1', value: JSON.stringify({ from: { id: 2, name: 'Bruno' }, to: { id: 1, name: 'Emma' }, message: 'Bruno started following you.' }), timestamp: String(sentAt) },
      { key: '1', value: JSON.stringify({ from: { id: 4, name: 'Lena' }, to: { id: 1, name: 'Emma' }, message: 'Lena liked your post: \'My weekend getaway!\'' }), timestamp: String(sentAt + 1000) }
    ]
  })
  const first = await emma.nextOf('notification')
  const second = await emma.nextOf('notification')
  t.match(first.notification, { type: 'message', userId: '1', actor: { id: '2', name: 'Bruno' }, message: 'Bruno started following you.', createdAt: '2026-11-27T14:00:00.000Z' })
  t.match(second.notification, { type: 'message', userId: '1', actor: { id: '4', name: 'Lena' }, createdAt: '2026-11-27T14:00:01.000Z' })
  t.match(first.notification.id, /^[0-9a-f]{8}-[0-9a-f]{4}-8/, 'an id derived from where the record is (UUIDv8)')
  t.same([first.seq, second.seq], [1, 2])
  const history = await (await fetch(`${gateway.url}/api/notifications`, { headers: { authorization: `Bearer ${await token('1')}` } })).json() as { items: Array<{ id: string, message: string }> }
  t.same(history.items.map(({ id }) => id), [second.notification.id, first.notification.id], 'stored as notifications, newest first')
})

// Scale-out: the publish API on two gateways sharing PostgreSQL and Redis.
t.test('two gateways on PostgreSQL + Redis: a publish through either reaches tabs on both; a retry on the other gateway is the same request', async (t) => {
  const shared = await startSharedServices(t)
  if (shared === undefined) return
  const env = { ...shared.env, ...JWT_MODE }
  const gateways: Gateway[] = [await startGateway(t, { env }), await startGateway(t, { env })]
  const [a, b] = gateways as [Gateway, Gateway]
  for (const gateway of gateways) await waitReady(gateway.url)
  const [ana, bo] = [await token('u-7f3a'), await token('u-90b1')]
  const tabs = [await openTab(t, a.url, ana), await openTab(t, b.url, ana), await openTab(t, b.url, bo)]
  for (const tab of tabs) t.equal((await tab.next()).type, 'ready')
  const service = await token('comments-backend', { scope: 'notify:service' })

  const viaA = await publish(a.url, service, reply, { 'idempotency-key': 'reply-1' })
  t.equal(viaA.status, 202)
  const ids = (await viaA.json() as Accepted).notifications
  const retryViaB = await publish(b.url, service, reply, { 'idempotency-key': 'reply-1' })
  t.equal(retryViaB.status, 202)
  t.equal(retryViaB.headers.get('idempotent-replayed'), 'true', 'the key is shared in Redis')
  t.same((await retryViaB.json() as Accepted).notifications, ids)

  const viaB = await publish(b.url, service, { ...reply, recipients: ['u-7f3a'], message: 'Second reply.' })
  t.equal(viaB.status, 202)
  for (const [index, tab] of tabs.entries()) {
    const mine = tab === tabs[2] ? 'u-90b1' : 'u-7f3a'
    const first = await tab.nextOf('notification')
    t.same({ ...first.notification, id: 'x', createdAt: 'x' }, { ...asSent(mine), id: 'x', createdAt: 'x' }, `tab ${index} (${mine}): the first publish, every field as sent`)
    t.equal(first.notification.id, ids.find(({ userId }) => userId === mine)!.id)
    if (mine === 'u-7f3a') t.match(await tab.nextOf('notification'), { seq: 2, notification: { message: 'Second reply.' } }, `tab ${index}: then the second, once`)
  }
  const history = await (await fetch(`${a.url}/api/notifications`, { headers: { authorization: `Bearer ${ana}` } })).json() as { items: Array<{ message: string }> }
  t.same(history.items.map(({ message }) => message), ['Second reply.', reply.message], 'one shared history: each stored once')
})
