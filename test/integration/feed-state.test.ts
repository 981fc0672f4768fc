import t, { type Test } from 'tap'
import type { GroupSummary, StateFrame } from '../../server/feed/frames.js'
import { FeedClient, type NotificationFrame } from '../helpers/clients.js'
import { startSharedServices, waitReady } from '../helpers/feed-checks.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { idToken, jwtMode, type IdentityService } from '../helpers/id-tokens.js'
import { EventStreamClient } from '../helpers/sse-client.js'

const identity: IdentityService = { secret: 'feed-state-test-secret-of-thirty-two-chars', audience: 'kafka-notify' }
const FOLLOWERS = [['bruno', 'Bruno'], ['rick', 'Rick'], ['lena', 'Lena'], ['ana', 'Ana']] as const

interface Item { id: string, seq: number, cursor: string, groupId: string, count?: number, actorCount?: number, actors?: GroupSummary['actors'] }
interface Page { items: Item[], unread: number, unseen: number, rev: number }

async function api (url: string, token: string, method: string, path: string, body?: unknown): Promise<Response> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  if (response.status >= 300) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`)
  return response
}

async function page (url: string, token: string, query = ''): Promise<Page> {
  return await (await api(url, token, 'GET', `/api/notifications${query}`)).json() as Page
}

/**
 * The scenario on gateways `a` and `b` (the same one for SQLite): Emma's tabs on both, four
 * follows grouped, state changes from one reaching the other, a tab offline during three of them,
 * mute, delete, and SSE getting the same state frames.
 */
async function scenario (t: Test, a: Gateway, b: Gateway): Promise<void> {
  const emma = await idToken(identity, 'emma', { name: 'Emma' })
  const backend = await idToken(identity, 'backend', { scope: 'notify:service' })
  const onA = await FeedClient.connect(a.url, emma)
  const onB = await FeedClient.connect(b.url, emma)
  t.teardown(() => { onA.socket.terminate(); onB.socket.terminate() })
  await Promise.all([onA.ready, onB.ready])

  for (const [id, name] of FOLLOWERS) await api(a.url, await idToken(identity, id, { name }), 'POST', '/api/follows', { followeeId: 'emma' })
  for (const tab of [onA, onB]) {
    const frames = [] as NotificationFrame[]
    for (let i = 0; i < 4; i++) frames.push(await tab.nextOf('notification'))
    t.same(frames.map(({ seq }) => seq), [1, 2, 3, 4], 'each tab: the four follows, in seq order')
    t.match(frames[3]!.group, { count: 4, actorCount: 4, actors: [{ id: 'ana' }, { id: 'lena' }, { id: 'rick' }] }, 'the last one carries the group of 4')
  }
  const grouped = await page(b.url, emma, '?grouped=true')
  t.equal(grouped.items.length, 1, 'grouped history: one group')
  t.match(grouped.items[0], { count: 4, actorCount: 4, actors: [{ id: 'ana', name: 'Ana' }, { id: 'lena', name: 'Lena' }, { id: 'rick', name: 'Rick' }] }, 'of 4, the right actors newest first')
  const groupId = grouped.items[0]!.groupId
  const flat = await page(a.url, emma)

  // A third tab reads up to here, then goes offline.
  const offline = await FeedClient.connect(b.url, emma)
  const { cursor } = await offline.ready as { cursor: string }
  offline.socket.terminate()
  await offline.closed
  const stream = await EventStreamClient.connect(t, b.url, '/sse', { authorization: `Bearer ${emma}` })
  await stream.nextOf('ready')

  await api(a.url, emma, 'POST', '/api/notifications/read', { ids: [flat.items[3]!.id] })
  const archived = await (await api(a.url, emma, 'POST', '/api/notifications/archive', { groups: [groupId] })).json() as { unread: number, unseen: number, rev: number }
  t.same(archived, { unread: 0, unseen: 0, rev: 2 }, 'archiving the group: the counts drop to 0')
  await api(b.url, emma, 'POST', '/api/notifications/seen', { upTo: flat.items[0]!.cursor })
  const onOther = [await onB.nextOf('state'), await onB.nextOf('state'), await onB.nextOf('state')]
  t.same(onOther.map(({ rev, changes }) => [rev, changes[0]!.op]), [[1, 'read'], [2, 'archive'], [3, 'seen']], 'the tab on the other gateway gets each change, in rev order')
  t.match(onOther[1], { unread: 0, unseen: 0, changes: [{ op: 'archive', ids: flat.items.map(({ id }) => id).sort() }] }, 'with the counts after it')
  t.match((await onA.nextOf('state')), { rev: 1 }, 'and the tab that made them too')
  const events = [await stream.nextOf('state'), await stream.nextOf('state'), await stream.nextOf('state')]
  t.same(events.map(({ frame }) => (frame as StateFrame).rev), [1, 2, 3], 'SSE gets the same state frames')
  t.equal(events[2]!.id, (events[2]!.frame as StateFrame).cursor, 'each with its cursor as the event id')

  const back = await FeedClient.connect(a.url, emma, { since: cursor })
  t.teardown(() => back.socket.terminate())
  t.match(await back.next(), { type: 'ready', seq: 4, rev: 3, unread: 0, unseen: 0 })
  const missed = [await back.next(), await back.next(), await back.next()] as StateFrame[]
  t.same(missed.map(({ type, rev }) => [type, rev]), [['state', 1], ['state', 2], ['state', 3]], 'the offline tab gets exactly the three changes, in rev order')
  t.same(missed.map(({ changes }) => changes), onOther.map(({ changes }) => changes), 'the same changes')
  t.match(await back.next(), { type: 'synced', seq: 4, rev: 3 })
  t.notOk(back.frames.some((frame) => frame.type === 'synced' && frame.reset === true), 'no reset')

  await api(a.url, emma, 'PUT', '/api/preferences', { muted: { types: ['follow'], actors: [] } })
  await api(b.url, await idToken(identity, 'max', { name: 'Max' }), 'POST', '/api/follows', { followeeId: 'emma' })
  await api(b.url, backend, 'POST', '/api/notifications', { recipients: ['emma'], type: 'comment.reply', message: 'Ana replied to your comment.' })
  const next = await onA.nextOf('notification')
  t.match(next, { seq: 5, unread: 1, notification: { type: 'comment.reply' } }, 'the muted follow was never pushed, and left no seq hole: the reply after it is 5')
  const after = await page(b.url, emma)
  t.same(after.items.map(({ seq }) => seq), [5], 'nor stored (the archived follows are not in the inbox either)')
  t.same([after.unread, after.unseen], [1, 1], 'nor counted')

  await api(b.url, emma, 'DELETE', `/api/notifications/${next.notification.id}`)
  t.same((await page(a.url, emma)).items, [], 'deleted: gone from history')
  const replay = await FeedClient.connect(b.url, emma, { since: '0' })
  t.teardown(() => replay.socket.terminate())
  const replayed: NotificationFrame[] = []
  for (let i = 0; i < 5; i++) replayed.push(await replay.nextOf('notification'))
  t.same(replayed.map(({ seq }) => seq), [1, 2, 3, 4, 5], 'the replay stays contiguous')
  t.same(replayed[4]!.notification, { id: next.notification.id, type: 'comment.reply', userId: 'emma', createdAt: next.notification.createdAt, actor: null, message: '', deleted: true }, 'the deleted one a tombstone, its content gone')
}

t.test('SQLite, one gateway on the real broker: grouping, state changes live and resumed, mute, delete', async (t) => {
  const gateway = await startGateway(t, { env: jwtMode(identity) })
  await waitReady(gateway.url)
  await scenario(t, gateway, gateway)
})

t.test('PostgreSQL and Redis, two gateways: the same, with each tab on another gateway', async (t) => {
  const shared = await startSharedServices(t)
  if (shared === undefined) return
  const env = { ...shared.env, ...jwtMode(identity) }
  const [a, b] = [await startGateway(t, { env }), await startGateway(t, { env })]
  await Promise.all([waitReady(a.url), waitReady(b.url)])
  await scenario(t, a!, b!)
})
