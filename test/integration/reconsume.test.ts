import t from 'tap'
import { FeedClient, follow, signIn } from '../helpers/clients.js'
import { startGateway, tempDir, uniqueName } from '../helpers/gateway.js'

t.test('records consumed again after retention deleted their rows (a new group id reads the topic from the start) are not stored or pushed again', async (t) => {
  const dataDir = tempDir(t)
  const topic = uniqueName('notifications')
  const env = (group: string): Record<string, string> => ({
    KAFKA_TOPIC: topic, KAFKA_DLQ_TOPIC: `${topic}.dlq`, KAFKA_GROUP_ID: group, INBOX_MAX_PER_USER: '2', AUTH_SECRET: 'reconsume-test-secret-long-enough-0000'
  })
  const first = await startGateway(t, { dataDir, env: env(uniqueName('group')) })
  const [emma, bruno] = await Promise.all([signIn(first.url, '1'), signIn(first.url, '2')])
  const tab = await FeedClient.connect(first.url, emma)
  t.equal((await tab.next()).type, 'ready')
  const sent: string[] = []
  for (let i = 0; i < 5; i++) {
    const response = await follow(first.url, bruno, '1')
    t.equal(response.status, 202)
    sent.push(((await response.json()) as { notification: { id: string } }).notification.id)
  }
  const received: string[] = []
  while (received.length < 5) {
    const frame = await tab.next()
    if (frame.type === 'notification') received.push(frame.notification.id)
  }
  t.same(received, sent)
  tab.close()
  t.equal(await first.services.inbox.prune(), 3, 'retention kept Emma\'s newest 2')
  await first.close()

  // The same inbox, a consumer group that has committed nothing: it reads the topic from offset 0.
  const second = await startGateway(t, { dataDir, env: env(uniqueName('group')) })
  const back = await FeedClient.connect(second.url, emma)
  t.teardown(() => back.close())
  t.match(await back.next(), { type: 'ready', seq: 5 })
  const response = await follow(second.url, bruno, '1')
  const fresh = ((await response.json()) as { notification: { id: string } }).notification.id
  // Emma's records share one partition, in order: the new one comes after the five old ones.
  const frame = await back.nextOf('notification')
  t.equal(frame.notification.id, fresh, 'the first push is the new follow: none of the five old records came back')
  t.equal(frame.seq, 6, 'and it is the sixth of her feed')
  const page = await (await fetch(`${second.url}/api/notifications`, { headers: { authorization: `Bearer ${emma}` } })).json() as { items: Array<{ id: string }>, unread: number }
  t.same(page.items.map(({ id }) => id), [fresh, sent[4], sent[3]], 'the inbox holds the kept rows and the new one, nothing deleted or doubled')
  t.equal(page.unread, 3)
})
