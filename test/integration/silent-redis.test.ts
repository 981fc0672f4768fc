import t, { type Test } from 'tap'
import { FeedClient, follow, signIn } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { startSharedServices, waitReady } from '../helpers/feed-checks.js'
import { startGateway, uniqueName, type Gateway } from '../helpers/gateway.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'

/** Far above the tests' bound: where a test is not about the periodic ping, the ping must not be what repairs. */
const NO_PING_MS = '600000'
const BOUND_MS = 30_000

// Two gateways share a PostgreSQL inbox and Redis: A consumes the topic and
// publishes, B only holds Emma's tab (it consumes a topic of its own), as a gateway without her
// partition would. A link to Redis then goes silent the way a NAT or a balancer that forgot the
// flow makes it: nothing arrives, and nothing is closed or reset.
const shared = await startSharedServices(t)
if (shared !== undefined) {
  const redis = new URL(shared.env.REDIS_URL!)

  /**
   * A gateway of the shared system on the inbox `databaseUrl`; `redisPort` overrides where it finds
   * Redis (a proxy), `consumes: false` gives it a topic of its own.
   */
  async function gateway (t: Test, databaseUrl: string, options: { redisPort?: number, consumes?: boolean, pingMs?: string }): Promise<Gateway> {
    const url = new URL(redis)
    if (options.redisPort !== undefined) url.port = String(options.redisPort)
    // A topic and group of its own each time: each test has a fresh inbox, and a group that had
    // consumed the topic for an earlier test would refill it from its start (the positions check).
    const topic = uniqueName(options.consumes === false ? 'unused' : 'notifications')
    const own = { KAFKA_TOPIC: topic, KAFKA_DLQ_TOPIC: `${topic}.dlq`, KAFKA_GROUP_ID: uniqueName('group') }
    const started = await startGateway(t, { env: { ...shared!.env, ...own, DATABASE_URL: databaseUrl, REDIS_URL: url.href.replace(/\/$/, ''), WS_HEARTBEAT_MS: options.pingMs ?? NO_PING_MS } })
    await waitReady(started.url)
    return started
  }

  async function proxy (t: Test): Promise<TcpProxy> {
    return await startTcpProxy(t, { host: redis.hostname, port: Number(redis.port) })
  }

  /** Emma's tab on `on`, with 1…`count` followed through `via` and received. */
  async function tabWith (t: Test, on: Gateway, via: Gateway, count: number): Promise<{ tab: FeedClient, bruno: string, seqs: number[] }> {
    const [emma, bruno] = [await signIn(on.url, '1'), await signIn(via.url, '2')]
    const tab = await FeedClient.connect(on.url, emma)
    t.teardown(() => tab.close())
    await tab.nextOf('ready')
    const seqs: number[] = []
    for (let i = 0; i < count; i++) {
      t.equal((await follow(via.url, bruno, '1')).status, 202)
      seqs.push((await tab.nextOf('notification', BOUND_MS)).seq)
    }
    return { tab, bruno, seqs }
  }

  /** Follows Emma `count` times through `via`, and reads the seqs her tab gets until it has `until`. */
  async function followAndReceive (tab: FeedClient, via: Gateway, bruno: string, count: number, until: number): Promise<number[]> {
    for (let i = 0; i < count; i++) {
      const response = await follow(via.url, bruno, '1')
      if (response.status !== 202) throw new Error(`follow answered ${response.status}`)
    }
    const seqs: number[] = []
    while (seqs.at(-1) !== until) seqs.push((await tab.nextOf('notification', BOUND_MS)).seq)
    return seqs
  }

  t.test('B\'s links to Redis go silent: B notices by its pings, reconnects, and its tab gets everything published meanwhile, then live frames again', async (t) => {
    const inbox = await shared.postgres.createDatabase()
    const a = await gateway(t, inbox, {})
    const link = await proxy(t)
    const b = await gateway(t, inbox, { redisPort: link.port, consumes: false })
    const { tab, bruno, seqs } = await tabWith(t, b, a, 3)
    t.same(seqs, [1, 2, 3])

    link.silence()
    const silentAt = Date.now()
    t.same(await followAndReceive(tab, a, bruno, 3, 6), [4, 5, 6], 'what A published while B heard nothing: from the inbox, in order, once')
    t.comment(`B's tab had 4–6 ${Date.now() - silentAt} ms after its links went silent`)
    t.same(await followAndReceive(tab, a, bruno, 1, 7), [7], 'then live again')
    const metrics = await (await fetch(`${b.url}/metrics`)).text()
    t.match(metrics, /^notify_redis_link_resets_total\{role="subscriber"\} [1-9]/m, 'B counted the subscriber\'s reset')
    t.ok(link.accepted > 3, `B opened new links (${link.accepted} in all)`)
  })

  t.test('A\'s links to Redis go silent and stay so, new ones too: B\'s tab gets A\'s last notification from the inbox at its next ping', async (t) => {
    const inbox = await shared.postgres.createDatabase()
    const link = await proxy(t)
    const a = await gateway(t, inbox, { redisPort: link.port })
    const b = await gateway(t, inbox, { consumes: false, pingMs: '1000' })
    const { tab, bruno, seqs } = await tabWith(t, b, a, 4)
    t.same(seqs, [1, 2, 3, 4])

    link.silence({ later: true })
    const silentAt = Date.now()
    t.same(await followAndReceive(tab, a, bruno, 1, 5), [5], 'the last one, lost with A\'s publish, and nothing after it to reveal the hole')
    t.comment(`B's tab had 5 ${Date.now() - silentAt} ms after A's links went silent`)
  })

  t.test('A\'s links to Redis go silent (new ones work): A\'s lost publish is repaired from the inbox once A reconnects', async (t) => {
    const inbox = await shared.postgres.createDatabase()
    const link = await proxy(t)
    const a = await gateway(t, inbox, { redisPort: link.port })
    const b = await gateway(t, inbox, { consumes: false })
    const { tab, bruno, seqs } = await tabWith(t, b, a, 4)
    t.same(seqs, [1, 2, 3, 4])

    link.silence()
    const silentAt = Date.now()
    t.same(await followAndReceive(tab, a, bruno, 1, 5), [5], 'the last one reaches B, once')
    t.comment(`B's tab had 5 ${Date.now() - silentAt} ms after A's links went silent`)
    // A counts the repair once Redis acknowledged its publish, which can be after B's tab got the frame.
    const metrics = await eventually('A counts the repair of Emma\'s tail', async () => await (await fetch(`${a.url}/metrics`)).text(),
      (text) => /^notify_feed_tail_repairs_total [1-9]/m.test(text))
    t.match(metrics, /^notify_redis_link_resets_total\{role="publisher"\} [1-9]/m, 'A counted the publisher\'s reset')
    t.match(metrics, /^notify_feed_tail_repairs_total [1-9]/m, 'and the repair of Emma\'s tail')
  })
}
