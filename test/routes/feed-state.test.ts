import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { StateFrame } from '../../server/feed/frames.js'
import { FeedClient, signIn } from '../helpers/clients.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

interface Item { id: string, read: boolean, archived: boolean, groupId: string, cursor: string, seq: number, actor: { id: string, name: string } | null }
interface GroupItem extends Item { count: number, actorCount: number, actors: Array<{ id: string, name: string }>, unread: number }
interface Page<I = Item> { items: I[], nextCursor: string | null, unread: number, unseen: number, rev: number }
interface Counts { unread: number, unseen: number, rev: number }

async function follow (app: FastifyInstance, token: string, followeeId: string): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/api/follows', headers: { authorization: `Bearer ${token}` }, payload: { followeeId } })
  if (response.statusCode !== 202) throw new Error(`follow answered ${response.statusCode}: ${response.body}`)
  return response.json<{ notification: { id: string } }>().notification.id
}

async function page<I = Item> (app: FastifyInstance, token: string, query = ''): Promise<Page<I>> {
  const response = await app.inject({ method: 'GET', url: `/api/notifications${query}`, headers: { authorization: `Bearer ${token}` } })
  if (response.statusCode !== 200) throw new Error(`history answered ${response.statusCode}: ${response.body}`)
  return response.json<Page<I>>()
}

function change (app: FastifyInstance, token: string, what: string, payload?: unknown) {
  return app.inject({
    method: what.startsWith('DELETE ') ? 'DELETE' : 'POST',
    url: what.startsWith('DELETE ') ? what.slice('DELETE '.length) : `/api/notifications/${what}`,
    headers: { authorization: `Bearer ${token}` },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> })
  })
}

async function gateway (t: Test): Promise<{ app: FastifyInstance, emma: string, bruno: string, rick: string, lena: string }> {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  return { app, emma: await signIn(app, '1'), bruno: await signIn(app, '2'), rick: await signIn(app, '3'), lena: await signIn(app, '4') }
}

t.test('archive by id leaves the inbox and its counts; the archive lists it; unarchive brings it back; each change one rev', async (t) => {
  const { app, emma, bruno, rick } = await gateway(t)
  const ids = [await follow(app, emma, '2'), await follow(app, rick, '2'), await follow(app, emma, '2')]
  const archived = await change(app, bruno, 'archive', { ids: [ids[1]] })
  t.equal(archived.statusCode, 200)
  t.same(archived.json(), { unread: 2, unseen: 2, rev: 1 })
  const inbox = await page(app, bruno)
  t.same(inbox.items.map(({ id }) => id), [ids[2], ids[0]], 'the inbox without it')
  t.same([inbox.unread, inbox.unseen, inbox.rev], [2, 2, 1])
  const archive = await page(app, bruno, '?archived=true')
  t.same(archive.items.map(({ id, archived }) => [id, archived]), [[ids[1], true]], 'the archive with it')
  t.same((await change(app, bruno, 'archive', { ids: [ids[1]] })).json(), { unread: 2, unseen: 2, rev: 1 }, 'archived already: nothing changes, no rev taken')
  t.same((await change(app, emma, 'unarchive', { ids: [ids[1]] })).json(), { unread: 0, unseen: 0, rev: 0 }, 'another user\'s id changes nothing of theirs or hers')
  t.same((await change(app, bruno, 'unarchive', { ids: [ids[1]] })).json(), { unread: 3, unseen: 3, rev: 2 })
  t.same((await page(app, bruno)).items.map(({ id }) => id), [...ids].reverse(), 'back in the inbox, in its place')
})

t.test('clear all archives up to a cursor; a notification after it stays; read and unread by id', async (t) => {
  const { app, emma, bruno, rick } = await gateway(t)
  await follow(app, emma, '2')
  await follow(app, rick, '2')
  const newest = (await page(app, bruno)).items[0]!
  const later = await follow(app, emma, '2') // arrives after the page the user cleared
  t.same((await change(app, bruno, 'archive', { upTo: newest.cursor })).json(), { unread: 1, unseen: 1, rev: 1 })
  t.same((await page(app, bruno)).items.map(({ id }) => id), [later], 'only what came after the cursor is left')
  t.same((await change(app, bruno, 'read', { ids: [later] })).json(), { unread: 0, unseen: 1, rev: 2 })
  t.same((await change(app, bruno, 'unread', { ids: [later] })).json(), { unread: 1, unseen: 1, rev: 3 })
  t.equal((await page(app, bruno)).items[0]!.read, false)
})

t.test('seen moves the unseen count, never back, and leaves read marks alone', async (t) => {
  const { app, emma, bruno } = await gateway(t)
  await follow(app, emma, '2')
  await follow(app, emma, '2')
  const [second, first] = (await page(app, bruno)).items
  t.same((await change(app, bruno, 'seen', { upTo: first!.cursor })).json(), { unread: 2, unseen: 1, rev: 1 })
  t.same((await change(app, bruno, 'seen', { upTo: second!.cursor })).json(), { unread: 2, unseen: 0, rev: 2 }, 'the bell is clear, the items still unread')
  t.same((await change(app, bruno, 'seen', { upTo: first!.cursor })).json(), { unread: 2, unseen: 0, rev: 2 }, 'never back: no change, no rev')
  await follow(app, emma, '2')
  t.same((await page(app, bruno)).unseen, 1, 'a new notification is unseen')
})

t.test('delete: the content leaves history and counts; a second delete changes nothing; the seq stays taken', async (t) => {
  const { app, emma, bruno } = await gateway(t)
  const [first, second] = [await follow(app, emma, '2'), await follow(app, emma, '2')]
  const deleted = await change(app, bruno, `DELETE /api/notifications/${first}`)
  t.equal(deleted.statusCode, 200)
  t.same(deleted.json(), { unread: 1, unseen: 1, rev: 1 })
  t.same((await page(app, bruno)).items.map(({ id }) => id), [second])
  t.same((await page(app, bruno, '?archived=true')).items, [], 'nor in the archive')
  t.same((await change(app, bruno, `DELETE /api/notifications/${first}`)).json(), { unread: 1, unseen: 1, rev: 1 }, 'deleted already: no change')
  t.same((await change(app, bruno, 'unarchive', { ids: [first] })).json(), { unread: 1, unseen: 1, rev: 1 }, 'out of reach of every change')
  const feed = await FeedClient.inject(t, app, `/ws?token=${bruno}&since=0`)
  t.match(await feed.next(), { type: 'ready', seq: 2, rev: 1, unread: 1, unseen: 1 })
  t.match(await feed.next(), { type: 'notification', seq: 1, notification: { id: first, deleted: true, actor: null, message: '' } }, 'replayed as a tombstone that keeps its seq')
  const tombstone = await feed.next()
  t.notOk('title' in tombstone || 'data' in (tombstone as { notification: object }).notification, 'nothing of its content')
})

t.test('grouped history: the follows of a user are one group, with its count, actors and unread; paging never splits a group', async (t) => {
  const { app, emma, bruno, rick, lena } = await gateway(t)
  for (const token of [emma, rick, emma, lena]) await follow(app, token, '2')
  const grouped = await page<GroupItem>(app, bruno, '?grouped=true')
  t.equal(grouped.items.length, 1)
  t.match(grouped.items[0], { count: 4, actorCount: 3, unread: 4, actor: { id: '4' } })
  t.same(grouped.items[0]!.actors.map(({ id }) => id), ['4', '1', '3'], 'distinct actors, newest first')
  t.same(grouped.nextCursor, null)
  const flat = await page(app, bruno)
  t.same(new Set(flat.items.map(({ groupId }) => groupId)), new Set([grouped.items[0]!.groupId]), 'each item names its group')
  // Another user's follows are another feed's group.
  await follow(app, bruno, '1')
  t.equal((await page<GroupItem>(app, emma, '?grouped=true')).items[0]!.count, 1)
  const first = await page<GroupItem>(app, bruno, '?grouped=true&limit=1')
  t.equal(first.items.length, 1)
  t.equal(first.nextCursor, null, 'one group, one page, however many notifications it has')
})

t.test('acting on a group acts on all of its members in one change; a group archived is closed', async (t) => {
  const { app, emma, bruno, rick } = await gateway(t)
  for (const token of [emma, rick, emma]) await follow(app, token, '2')
  const [group] = (await page<GroupItem>(app, bruno, '?grouped=true')).items
  const feed = await FeedClient.inject(t, app, `/ws?token=${bruno}`)
  await feed.next()
  t.same((await change(app, bruno, 'read', { groups: [group!.groupId] })).json(), { unread: 0, unseen: 3, rev: 1 })
  t.same((await change(app, bruno, 'archive', { groups: [group!.groupId] })).json(), { unread: 0, unseen: 0, rev: 2 })
  const frames = [await feed.nextOf('state'), await feed.nextOf('state')] as StateFrame[]
  t.same(frames.map(({ rev, changes }) => [rev, changes[0]!.op, 'ids' in changes[0]! ? changes[0].ids.length : 0]), [[1, 'read', 3], [2, 'archive', 3]], 'one state frame per change, naming every member')
  const next = await follow(app, emma, '2')
  const grouped = await page<GroupItem>(app, bruno, '?grouped=true')
  t.same(grouped.items.map(({ id, groupId, count }) => [id, groupId, count]), [[next, next, 1]], 'a new follow begins a new group')
  t.same((await change(app, bruno, `DELETE /api/notifications/groups/${group!.groupId}`)).json(), { unread: 1, unseen: 1, rev: 3 }, 'the archived group deleted whole')
  t.same((await page(app, bruno, '?archived=true')).items, [])
})

t.test('bad input: 4xx naming the field, nothing written', async (t) => {
  const { app, emma, bruno } = await gateway(t)
  const id = await follow(app, emma, '2')
  const { items: [item] } = await page(app, bruno)
  for (const [what, payload, code, field] of [
    ['archive', { ids: [id], upTo: item!.cursor }, 'INVALID_BODY', 'body'],
    ['archive', {}, 'INVALID_BODY', 'body'],
    ['archive', { ids: ['nope'] }, 'INVALID_BODY', 'body/ids/0'],
    ['unread', { upTo: item!.cursor }, 'INVALID_BODY', 'upTo'],
    ['unarchive', { groups: [] }, 'INVALID_BODY', 'body/groups'],
    ['read', { ids: Array.from({ length: 101 }, () => id) }, 'INVALID_BODY', 'body/ids'],
    ['seen', {}, 'INVALID_BODY', 'upTo'],
    ['seen', { upTo: 'x' }, 'INVALID_BODY', 'body/upTo'],
    ['DELETE /api/notifications/nope', undefined, 'INVALID_QUERY', 'params/id'],
    ['DELETE /api/notifications/groups/nope', undefined, 'INVALID_QUERY', 'params/id']
  ] as const) {
    const response = await change(app, bruno, what, payload)
    t.equal(response.statusCode, 400, what)
    t.equal(response.json().code, code, what)
    t.match(response.json().message, field, `${what}: names ${field}`)
  }
  const stale = await change(app, bruno, 'archive', { upTo: '0badc0de.1' })
  t.same([stale.statusCode, stale.json().code], [409, 'STALE_CURSOR'])
  t.same(await page(app, bruno), { ...await page(app, bruno), unread: 1, unseen: 1, rev: 0 }, 'nothing was written')
  const anonymous = await app.inject({ method: 'POST', url: '/api/notifications/archive', payload: { ids: [id] } })
  t.same([anonymous.statusCode, anonymous.json().code], [401, 'UNAUTHORIZED'])
})

t.test('every tab of the user gets each state change as a state frame, then an unread frame', async (t) => {
  const { app, emma, bruno } = await gateway(t)
  const id = await follow(app, emma, '2')
  const tabs = [await FeedClient.inject(t, app, `/ws?token=${bruno}`), await FeedClient.inject(t, app, `/ws?token=${bruno}`)]
  for (const tab of tabs) await tab.next()
  const counts = (await change(app, bruno, 'archive', { ids: [id] })).json<Counts>()
  for (const tab of tabs) {
    t.match(await tab.next(), { type: 'state', rev: counts.rev, seq: 1, changes: [{ op: 'archive', ids: [id] }], unread: 0, unseen: 0 })
    t.same(await tab.next(), { type: 'unread', unread: 0, rev: counts.rev })
  }
})
