import t from 'tap'
import { FeedClient, follow, signIn } from '../helpers/clients.js'
import { startGateway, tempDir, testEnv } from '../helpers/gateway.js'
import { spawnGateway } from '../helpers/gateway-process.js'

const SECRET = 'restart-test-secret-that-is-long-enough'
const FOLLOWS = 1500
const KILL_AFTER = 400
const CONCURRENCY = 20

t.test('a gateway SIGKILLed while consuming loses nothing it accepted, and stores nothing twice', async (t) => {
  const env = { ...testEnv(tempDir(t)), AUTH_SECRET: SECRET }
  const first = await spawnGateway(t, env)
  const [emma, bruno] = await Promise.all([signIn(first.url, '1'), signIn(first.url, '2')])

  const accepted: string[] = []
  let killed = false
  const sender = async (): Promise<void> => {
    while (!killed && accepted.length < FOLLOWS) {
      try {
        const response = await follow(first.url, bruno, '1')
        if (response.status === 202) accepted.push(((await response.json()) as { notification: { id: string } }).notification.id)
      } catch {
        return // the gateway is gone: this POST never got a 202, so it promised nothing
      }
      if (accepted.length >= KILL_AFTER && !killed) {
        killed = true
        void first.kill('SIGKILL')
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, sender))
  t.equal(await first.exited, 'signal SIGKILL', 'the first gateway was killed mid-stream')
  t.ok(accepted.length >= KILL_AFTER, `${accepted.length} follows were accepted before the kill`)

  const second = await spawnGateway(t, env)
  const tab = await FeedClient.connect(second.url, emma, { since: '0' })
  t.teardown(() => tab.close())
  t.equal((await tab.next()).type, 'ready')
  const seen = new Map<string, number>()
  const missing = new Set(accepted)
  while (missing.size > 0) {
    const frame = await tab.next(60_000)
    if (frame.type !== 'notification') continue
    const id = frame.notification.id
    seen.set(id, (seen.get(id) ?? 0) + 1)
    missing.delete(id)
  }
  t.equal(missing.size, 0, 'every accepted follow reached the user after the restart')
  t.ok([...seen.values()].every((count) => count === 1), 'each exactly once')
  const stored: string[] = []
  let before: string | null = null
  do {
    const query: string = before === null ? 'limit=100' : `limit=100&before=${before}`
    const page = await (await fetch(`${second.url}/api/notifications?${query}`, { headers: { authorization: `Bearer ${emma}` } })).json() as { items: Array<{ id: string }>, nextCursor: string | null }
    stored.push(...page.items.map((item) => item.id))
    before = page.nextCursor
  } while (before !== null)
  t.equal(new Set(stored).size, stored.length, 'the inbox holds no notification twice')
  t.ok(accepted.every((id) => stored.includes(id)), 'and holds every accepted one')
})

t.test('history and read state survive a restart; pages have no overlap and no hole; a token sees only its own user', async (t) => {
  const dataDir = tempDir(t)
  const env = { ...testEnv(dataDir), AUTH_SECRET: SECRET }
  const first = await startGateway(t, { dataDir, env })
  const [emma, bruno, rick] = await Promise.all(['1', '2', '3'].map((id) => signIn(first.url, id)))
  const watcher = await FeedClient.connect(first.url, rick!)
  t.equal((await watcher.next()).type, 'ready')
  for (let i = 0; i < 25; i++) t.equal((await follow(first.url, bruno!, '1')).status, 202)
  t.equal((await follow(first.url, bruno!, '3')).status, 202)
  // Rick's notification was sent last, to a partition of its own or not: wait for Emma's via her unread count.
  await watcher.nextOf('notification')
  watcher.close()
  const page = async (url: string, token: string, query: string): Promise<{ items: Array<{ id: string, cursor: string, read: boolean, userId: string }>, nextCursor: string | null, unread: number }> =>
    (await fetch(`${url}/api/notifications?${query}`, { headers: { authorization: `Bearer ${token}` } })).json() as never
  let emmaPage = await page(first.url, emma!, 'limit=100')
  for (let tries = 0; emmaPage.items.length < 25 && tries < 1000; tries++) emmaPage = await page(first.url, emma!, 'limit=100')
  t.equal(emmaPage.items.length, 25)
  const tenth = emmaPage.items[15]!
  const read = await fetch(`${first.url}/api/notifications/read`, {
    method: 'POST',
    headers: { authorization: `Bearer ${emma}`, 'content-type': 'application/json' },
    body: JSON.stringify({ upTo: tenth.cursor })
  })
  t.same(await read.json(), { unread: 15, unseen: 25, rev: 1 }, "marking the ten oldest read leaves 15 unread (the read state's first change: rev 1)")
  await first.close()

  const second = await startGateway(t, { dataDir, env })
  const walked: string[] = []
  let cursor: string | null = null
  do {
    const next = await page(second.url, emma!, `limit=7${cursor === null ? '' : `&before=${cursor}`}`)
    t.equal(next.unread, 15, 'unread survived the restart')
    walked.push(...next.items.map((item) => item.id))
    t.ok(next.items.every((item) => item.userId === '1'), 'only Emma\'s items')
    cursor = next.nextCursor
  } while (cursor !== null)
  t.same(walked, emmaPage.items.map((item) => item.id), 'pages of 7 walk the whole history: no overlap, no hole, newest first')
  const after = await page(second.url, emma!, 'limit=100')
  t.same(after.items.map((item) => item.read), emmaPage.items.map((_, i) => i >= 15), 'read flags survived')
  const rickPage = await page(second.url, rick!, 'limit=100')
  t.same(rickPage.items.map((item) => item.userId), ['3'], 'Rick\'s token returns only Rick\'s notification')
})
