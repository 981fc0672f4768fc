import t, { type Test } from 'tap'
import { encodeNotification } from '../../server/kafka/record.js'
import { followNotification } from '../../server/notification.js'
import { FeedClient, signIn, type Frame } from '../helpers/clients.js'
import { startGateway } from '../helpers/gateway.js'
import { rawProducer } from '../helpers/kafka.js'

const MAX_BUFFERED_BYTES = 65_536
/** Each batch: this many notifications for the slow user, with one for the healthy user every STRIDE. */
const BATCH = 5_000
const STRIDE = 100
const SEND_SLICE = 2_000
/** ~300-byte frames: 20 batches are ~30 MB, far past loopback's socket buffers (a few MB) and the bound. */
const MAX_BATCHES = 20
/** The gateway runs in this process; a bounded send queue keeps it well below this. */
const RSS_SLACK_BYTES = 200 * 1024 * 1024

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }
const rick = { id: '3', name: 'Rick' }

t.test('a client that never reads is dropped at the bound; others keep receiving; memory stays bounded; nothing is lost', async (t) => {
  const gateway = await startGateway(t, { env: { WS_MAX_BUFFERED_BYTES: String(MAX_BUFFERED_BYTES), INBOX_MAX_PER_USER: '1000000' } })
  const { hub } = gateway.services
  const topic = gateway.config.kafka.topic
  const producer = await rawProducer(t)
  const [emmaToken, brunoToken] = await Promise.all([signIn(gateway.url, emma.id), signIn(gateway.url, bruno.id)])

  // Emma's client stops reading the moment it is open: the kernel buffers fill, then the gateway's queue.
  const slow = await FeedClient.connect(gateway.url, emmaToken)
  t.teardown(() => slow.close())
  slow.socket.pause()
  const healthy = await FeedClient.connect(gateway.url, brunoToken)
  t.teardown(() => healthy.close())
  t.match(await healthy.next(), { type: 'ready', user: { id: bruno.id } }, 'the healthy client is ready')
  t.equal(hub.connectionsOf(emma.id), 1, 'the slow client is connected')

  const forEmma: string[] = []
  const forBruno: string[] = []
  const received: string[] = []
  /** Reads the healthy client's frames until `id` arrives; every notification on the way is recorded. */
  const receiveUntil = async (id: string): Promise<void> => {
    for (;;) {
      const frame = await healthy.next(30_000)
      if (frame.type !== 'notification') continue
      const { notification } = frame
      received.push(notification.id)
      if (notification.id === id) return
    }
  }
  /**
   * One partition for both users keeps the order total: once Bruno has the batch's last record,
   * every one of Emma's before it has been handed to her socket.
   */
  const produceBatch = async (): Promise<string> => {
    const messages = []
    let last = ''
    for (let i = 1; i <= BATCH; i++) {
      const notification = followNotification(rick, emma)
      forEmma.push(notification.id)
      messages.push({ ...encodeNotification(notification), partition: 0 })
      if (i % STRIDE === 0) {
        const toBruno = followNotification(rick, bruno)
        forBruno.push(toBruno.id)
        last = toBruno.id
        messages.push({ ...encodeNotification(toBruno), partition: 0 })
      }
    }
    // Sent in slices: a produce request must stay under the broker's message.max.bytes (1 MB).
    for (let start = 0; start < messages.length; start += SEND_SLICE) {
      await producer.send({ topic, acks: -1, messages: messages.slice(start, start + SEND_SLICE) })
    }
    return last
  }

  const rssBefore = process.memoryUsage().rss
  let batches = 0
  while (hub.connectionsOf(emma.id) > 0 && batches < MAX_BATCHES) {
    batches++
    await receiveUntil(await produceBatch())
  }
  t.equal(hub.connectionsOf(emma.id), 0, `the slow client was dropped (after ${batches} batches of ${BATCH})`)
  t.ok(batches > 1, 'not before the kernel buffers were full: the first batch fit')
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text()
  t.match(metrics, /^notify_ws_dropped_total\{why="slow"\} 1$/m, 'counted once as slow')

  // Bruno goes on receiving after the drop as before it.
  await receiveUntil(await produceBatch())
  t.equal(received.length, forBruno.length, 'the healthy client got as many notifications as were sent to it')
  t.same(received, forBruno, 'every one, once, in order')
  t.equal(hub.connectionsOf(bruno.id), 1, 'and is still connected')

  const rssGrowth = process.memoryUsage().rss - rssBefore
  t.ok(rssGrowth < RSS_SLACK_BYTES, `RSS grew ${(rssGrowth / 1024 / 1024).toFixed(0)} MB while ${(forEmma.length * 300 / 1024 / 1024).toFixed(0)} MB (~300 B each) of frames were pushed at the slow client`)

  // Nothing was lost for Emma: the inbox has every one of her notifications...
  const stored: string[] = []
  for (let query = '?limit=100'; ;) {
    const response = await fetch(`${gateway.url}/api/notifications${query}`, { headers: { authorization: `Bearer ${emmaToken}` } })
    const page = await response.json() as { items: Array<{ id: string }>, nextCursor: string | null }
    stored.push(...page.items.map((item) => item.id))
    if (page.nextCursor === null) break
    query = `?limit=100&before=${page.nextCursor}`
  }
  t.same(stored.reverse(), forEmma, `all ${forEmma.length} of the slow user's notifications are in the inbox, in order`)

  // ...and a fresh client catching up from the start gets all of them, then synced.
  const catchUp = await replayFromStart(t, gateway.url, emmaToken)
  t.match(catchUp.ready, { type: 'ready', user: { id: emma.id }, unread: forEmma.length }, 'ready, with every one unread')
  // Regression: with a 64 KiB bound, a 500-frame page sent in one burst closed this reader 4008.
  t.equal(catchUp.end, 'synced', 'the catch-up runs to its end')
  t.same(catchUp.ids, forEmma, `the catch-up replays all ${forEmma.length}, in order, once each`)
})

interface CatchUp { ready: Frame | undefined, ids: string[], end: string }

/** Opens /ws?since=0 and reads until `synced`, the socket's close, or a bound. */
async function replayFromStart (t: Test, url: string, token: string, boundMs = 60_000): Promise<CatchUp> {
  const feed = await FeedClient.connect(url, token, { since: '0' })
  t.teardown(() => feed.close())
  const ids = (): string[] => feed.frames.flatMap((frame) => frame.type === 'notification' ? [frame.notification.id] : [])
  const end = await Promise.race([
    feed.until('synced', () => feed.frames.some((frame) => frame.type === 'synced'), boundMs).then(() => 'synced', () => `no synced within ${boundMs} ms`),
    feed.closed.then(({ code }) => `closed with ${code} after ${ids().length} frames`)
  ])
  return { ready: feed.frames.find((frame) => frame.type === 'ready'), ids: ids(), end }
}
