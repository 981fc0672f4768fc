import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { signIn } from '../helpers/clients.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

interface Item {
  id: string
  type: string
  userId: string
  actor: { id: string, name: string } | null
  message: string
  createdAt: string
  read: boolean
  cursor: string
  seq: number
}
interface Page { items: Item[], nextCursor: string | null, unread: number }

async function follow (app: FastifyInstance, token: string, followeeId: string): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/api/follows', headers: { authorization: `Bearer ${token}` }, payload: { followeeId } })
  if (response.statusCode !== 202) throw new Error(`follow answered ${response.statusCode}: ${response.body}`)
  return response.json<{ notification: { id: string } }>().notification.id
}

function history (app: FastifyInstance, token: string, query = '') {
  return app.inject({ method: 'GET', url: `/api/notifications${query}`, headers: { authorization: `Bearer ${token}` } })
}

function markRead (app: FastifyInstance, token: string, payload: unknown) {
  return app.inject({ method: 'POST', url: '/api/notifications/read', headers: { authorization: `Bearer ${token}` }, payload: payload as Record<string, unknown> })
}

t.test('GET /api/notifications and POST /api/notifications/read', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const emma = await signIn(app, '1')
  const bruno = await signIn(app, '2')
  const rick = await signIn(app, '3')
  const lena = await signIn(app, '4')
  // Bruno gets five follows; Emma gets one.
  const forBruno: string[] = []
  for (const token of [emma, rick, lena, emma, rick]) forBruno.push(await follow(app, token, '2'))
  const forEmma = await follow(app, bruno, '1')

  t.test('401 without a token', async (t) => {
    for (const response of [
      await app.inject({ method: 'GET', url: '/api/notifications' }),
      await app.inject({ method: 'POST', url: '/api/notifications/read', payload: { upTo: '1' } }),
      await history(app, 'not-a-token')
    ]) {
      t.equal(response.statusCode, 401)
      t.equal(response.json().code, 'UNAUTHORIZED')
    }
  })

  t.test('history is the caller\'s own, newest first, with read and cursor', async (t) => {
    const response = await history(app, bruno)
    t.equal(response.statusCode, 200)
    const page = response.json<Page>()
    t.same(page.items.map(({ id }) => id), [...forBruno].reverse())
    t.ok(page.items.every((item) => item.userId === '2' && item.read === false && item.type === 'follow'))
    t.same(Object.keys(page.items[0]!).sort(), ['actor', 'archived', 'createdAt', 'cursor', 'groupId', 'id', 'message', 'read', 'seq', 'type', 'userId'])
    t.match(page.items[0], { actor: { id: '3', name: 'Rick' }, message: 'Rick started following you.', cursor: /^[0-9a-f]{8}\.5$/, seq: 5 })
    t.same(page.items.map(({ seq }) => seq), [5, 4, 3, 2, 1], 'Bruno\'s feed is numbered 1, 2, 3…')
    t.equal(page.nextCursor, null)
    t.equal(page.unread, 5)

    const emmas = (await history(app, emma)).json<Page>()
    t.same(emmas.items.map(({ id }) => id), [forEmma], 'Emma\'s token never sees Bruno\'s items')
    t.equal(emmas.unread, 1)
    const lenas = (await history(app, lena)).json<Page>()
    t.same(lenas, { items: [], nextCursor: null, unread: 0, unseen: 0, rev: 0 })
  })

  t.test('pages with limit and before, without overlap or hole', async (t) => {
    const seen: string[] = []
    let query = '?limit=2'
    const sizes: number[] = []
    for (;;) {
      const page = (await history(app, bruno, query)).json<Page>()
      sizes.push(page.items.length)
      seen.push(...page.items.map(({ id }) => id))
      if (page.nextCursor === null) break
      t.equal(page.nextCursor, page.items.at(-1)!.cursor, 'nextCursor is the last item\'s cursor')
      query = `?limit=2&before=${page.nextCursor}`
    }
    t.same(sizes, [2, 2, 1])
    t.same(seen, [...forBruno].reverse())
    const defaults = (await history(app, bruno)).json<Page>()
    t.equal(defaults.items.length, 5, 'the default limit holds them all')
  })

  t.test('another user\'s cursor as before still gives only the caller\'s items', async (t) => {
    const emmaCursor = (await history(app, emma)).json<Page>().items[0]!.cursor
    t.match(emmaCursor, /\.1$/, 'the first of Emma\'s feed')
    const page = (await history(app, bruno, `?before=${emmaCursor.replace(/\.1$/, '.3')}`)).json<Page>()
    t.same(page.items.map(({ id }) => id), forBruno.slice(0, 2).reverse(), 'a position names a place in the caller\'s own feed only')
  })

  t.test('400 INVALID_QUERY for a bad limit or before', async (t) => {
    for (const query of ['?limit=0', '?limit=101', '?limit=ten', '?before=abc', '?before=-1', '?other=1']) {
      const response = await history(app, bruno, query)
      t.equal(response.statusCode, 400, query)
      t.equal(response.json().code, 'INVALID_QUERY', query)
    }
  })

  t.test('read upTo a cursor', async (t) => {
    const items = (await history(app, bruno)).json<Page>().items
    const third = items[2]!
    const response = await markRead(app, bruno, { upTo: third.cursor })
    t.equal(response.statusCode, 200)
    t.match(response.json(), { unread: 2, rev: 1 }, 'the new count, and the read state\'s rev')
    const after = (await history(app, bruno)).json<Page>()
    t.same(after.items.map(({ read }) => read), [false, false, true, true, true])
    t.equal(after.unread, 2)
  })

  t.test('read by ids; another user\'s ids change nothing', async (t) => {
    const brunoItems = (await history(app, bruno)).json<Page>().items
    const emmaUnread = (await history(app, emma)).json<Page>().unread
    const foreign = await markRead(app, emma, { ids: [brunoItems[0]!.id, brunoItems[1]!.id] })
    t.equal(foreign.statusCode, 200)
    t.match(foreign.json(), { unread: emmaUnread, rev: 0 }, 'Emma\'s unread count is unchanged, and so is her rev')
    t.equal((await history(app, bruno)).json<Page>().unread, 2, 'Bruno\'s items stay unread')

    const own = await markRead(app, bruno, { ids: [brunoItems[0]!.id] })
    t.match(own.json(), { unread: 1, rev: 2 })
    t.same((await history(app, bruno)).json<Page>().items.map(({ read }) => read), [true, false, true, true, true])
  })

  t.test('Emma reading up to a cursor of Bruno\'s leaves Bruno\'s items alone', async (t) => {
    const newest = (await history(app, bruno)).json<Page>().items[0]!.cursor
    const answer = await markRead(app, emma, { upTo: newest })
    t.equal(answer.statusCode, 200)
    t.match(answer.json(), { unread: (await history(app, emma)).json<Page>().unread, rev: 1 }, 'the answer is Emma\'s own count')
    t.equal((await history(app, bruno)).json<Page>().unread, 1, 'Bruno\'s unread count is unchanged')
    const everything = await markRead(app, emma, { upTo: `${newest.split('.')[0]!}.999999999` })
    t.match(everything.json(), { unread: 0, rev: 1 }, 'Emma reads all of her own (she had read them: no new rev)')
    t.equal((await history(app, bruno)).json<Page>().unread, 1, 'and still none of Bruno\'s')
  })

  t.test('409 STALE_CURSOR for a cursor from another epoch or of the old format, changing nothing', async (t) => {
    const unread = (await history(app, bruno)).json<Page>().unread
    for (const cursor of ['0badc0de.1', '3']) {
      const page = await history(app, bruno, `?before=${cursor}`)
      t.equal(page.statusCode, 409, `before=${cursor}`)
      t.match(page.json(), { code: 'STALE_CURSOR', message: /querystring\/before/ })
      const read = await markRead(app, bruno, { upTo: cursor })
      t.equal(read.statusCode, 409, `upTo ${cursor}`)
      t.match(read.json(), { code: 'STALE_CURSOR', message: /body\/upTo/ })
    }
    t.equal((await history(app, bruno)).json<Page>().unread, unread, 'nothing was marked read')
  })

  t.test('400 INVALID_BODY for a bad read body', async (t) => {
    const cases: unknown[] = [{}, { upTo: 'abc' }, { ids: [] }, { ids: ['not-a-uuid'] }, { upTo: '1', ids: [forEmma] }, { upTo: '1', extra: true }]
    for (const payload of cases) {
      const response = await markRead(app, bruno, payload)
      t.equal(response.statusCode, 400, JSON.stringify(payload))
      t.equal(response.json().code, 'INVALID_BODY', JSON.stringify(payload))
    }
  })
})
