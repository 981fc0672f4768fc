import t from 'tap'
import { FeedClient, follow, signIn, type NotificationFrame } from '../helpers/clients.js'
import { waitReady } from '../helpers/feed-checks.js'
import { startGateway } from '../helpers/gateway.js'
import { startPostgres } from '../helpers/postgres.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

/** Far above the test's own bound: the tail must come back by the republish, not by the periodic ping. */
const PING_MS = 600_000
const BOUND_MS = 15_000

// A COMMIT whose connection drops after the commit was durable. The consumer
// cannot tell it from a failed one and tries the batch again; the retry skips every record as
// already applied, and nothing was published: the tab waited for the next notification to notice.
t.test('the reply to an append\'s COMMIT is lost with its connection: the batch\'s last notification still reaches the tab, once', async (t) => {
  const postgres = await startPostgres(t)
  if (postgres === undefined) return
  const database = new URL(await postgres.createDatabase())
  const proxy = await startTcpProxy(t, { host: database.hostname, port: Number(database.port) })
  database.port = String(proxy.port)
  const gateway = await startGateway(t, { env: { DATABASE_URL: database.href, WS_HEARTBEAT_MS: String(PING_MS) } })
  await waitReady(gateway.url)
  const [emma, bruno] = [await signIn(gateway.url, '1'), await signIn(gateway.url, '2')]
  const tab = await FeedClient.connect(gateway.url, emma)
  t.teardown(() => tab.close())
  await tab.nextOf('ready')

  const received: number[] = []
  for (let i = 1; i <= 4; i++) {
    t.equal((await follow(gateway.url, bruno, '1')).status, 202)
    received.push((await tab.nextOf('notification')).seq)
  }
  t.same(received, [1, 2, 3, 4])

  const cut = proxy.cutReplyTo('COMMIT', 'INSERT INTO notifications')
  t.equal((await follow(gateway.url, bruno, '1')).status, 202)
  await cut
  const started = Date.now()
  const last: NotificationFrame = await tab.nextOf('notification', BOUND_MS)
  t.comment(`the tab got seq ${last.seq} ${Date.now() - started} ms after the COMMIT's reply was lost`)
  t.equal(last.seq, 5, 'seq 5, republished from the inbox')
  t.match(last, { unread: 5 }, 'with the unread count')

  t.equal((await follow(gateway.url, bruno, '1')).status, 202)
  t.equal((await tab.nextOf('notification', BOUND_MS)).seq, 6, 'and the next one follows on: 5 was sent once')
})
