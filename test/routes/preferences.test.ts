import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { FeedClient, signIn } from '../helpers/clients.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

function preferences (app: FastifyInstance, token: string, muted?: unknown) {
  return app.inject({
    method: muted === undefined ? 'GET' : 'PUT',
    url: '/api/preferences',
    headers: { authorization: `Bearer ${token}` },
    ...(muted === undefined ? {} : { payload: { muted } as Record<string, unknown> })
  })
}

async function follow (app: FastifyInstance, token: string, followeeId: string): Promise<void> {
  const response = await app.inject({ method: 'POST', url: '/api/follows', headers: { authorization: `Bearer ${token}` }, payload: { followeeId } })
  if (response.statusCode !== 202) throw new Error(`follow answered ${response.statusCode}: ${response.body}`)
}

t.test('preferences are empty until set, replaced whole, and every tab hears of a change', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const bruno = await signIn(app, '2')
  const emma = await signIn(app, '1')
  t.same((await preferences(app, bruno)).json(), { muted: { types: [], actors: [] } })
  const tab = await FeedClient.inject(t, app, `/ws?token=${bruno}`)
  await tab.next()
  const put = await preferences(app, bruno, { types: ['follow', 'comment.reply'], actors: ['3'] })
  t.equal(put.statusCode, 200)
  t.same(put.json(), { muted: { types: ['follow', 'comment.reply'], actors: ['3'] } })
  t.same(await tab.next(), { type: 'preferences', muted: { types: ['follow', 'comment.reply'], actors: ['3'] } })
  t.same((await preferences(app, bruno)).json(), put.json(), 'stored')
  t.same((await preferences(app, emma)).json(), { muted: { types: [], actors: [] } }, 'each user\'s own')
  t.same((await preferences(app, bruno, { types: [], actors: [] })).json(), { muted: { types: [], actors: [] } }, 'replaced whole')
})

t.test('a muted type or actor: later notifications of it are neither stored, pushed nor counted, and no seq is skipped', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const [emma, bruno, rick] = [await signIn(app, '1'), await signIn(app, '2'), await signIn(app, '3')]
  await follow(app, emma, '2') // seq 1, before the mute: it stays
  const tab = await FeedClient.inject(t, app, `/ws?token=${bruno}`)
  t.match(await tab.next(), { type: 'ready', seq: 1, unread: 1 })
  await preferences(app, bruno, { types: [], actors: ['3'] })
  await tab.next() // the preferences frame
  await follow(app, rick, '2') // muted actor
  await follow(app, emma, '2')
  t.match(await tab.next(), { type: 'notification', seq: 2, unread: 2, notification: { actor: { id: '1' } } }, 'the next one takes seq 2: the muted one left no hole')
  await preferences(app, bruno, { types: ['follow'], actors: [] })
  await tab.next()
  await follow(app, emma, '2')
  await preferences(app, bruno, { types: [], actors: [] })
  await tab.next()
  await follow(app, rick, '2')
  t.match(await tab.next(), { type: 'notification', seq: 3, unread: 3, notification: { actor: { id: '3' } } }, 'nothing pushed while follows were muted, and the seq goes on')
  const history = await app.inject({ method: 'GET', url: '/api/notifications', headers: { authorization: `Bearer ${bruno}` } })
  t.same(history.json<{ items: Array<{ seq: number }> }>().items.map(({ seq }) => seq), [3, 2, 1], 'neither stored')
  t.equal(history.json<{ unread: number }>().unread, 3, 'nor counted')
})

t.test('bad preferences: 400 naming the field, nothing stored', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const bruno = await signIn(app, '2')
  for (const [muted, field] of [
    [{ types: ['Follow'], actors: [] }, 'body/muted/types/0'],
    [{ types: [], actors: ['a b'] }, 'body/muted/actors/0'],
    [{ types: Array.from({ length: 101 }, (_, i) => `t${i}`), actors: [] }, 'body/muted/types'],
    [{ types: ['follow', 'follow'], actors: [] }, 'body/muted/types'],
    [{ types: [] }, 'actors']
  ] as const) {
    const response = await preferences(app, bruno, muted)
    t.equal(response.statusCode, 400, field)
    t.equal(response.json().code, 'INVALID_BODY')
    t.match(response.json().message, field)
  }
  t.same((await preferences(app, bruno)).json(), { muted: { types: [], actors: [] } })
})
