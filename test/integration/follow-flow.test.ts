import t from 'tap'
import { FeedClient, follow, signIn, type NotificationFrame } from '../helpers/clients.js'
import { startGateway } from '../helpers/gateway.js'
import { readTopic } from '../helpers/kafka.js'

t.test('a follow lands in the topic, keyed by the recipient, with the documented value and headers', async (t) => {
  const gateway = await startGateway(t)
  const bruno = await signIn(gateway.url, '2')
  const response = await follow(gateway.url, bruno, '1')
  t.equal(response.status, 202)
  const { notification } = await response.json() as { notification: Record<string, unknown> }
  t.match(notification, {
    type: 'follow',
    userId: '1',
    actor: { id: '2', name: 'Bruno' },
    message: 'Bruno started following you.'
  })

  const [record] = await readTopic(t, gateway.config.kafka.topic, 1)
  t.equal(record?.key?.toString(), '1', 'key = recipient id')
  t.same(JSON.parse(record?.value?.toString() ?? 'null'), notification, 'value = the notification the POST answered with')
  t.equal(record?.headers?.['content-type']?.toString(), 'application/json')
  t.equal(record?.headers?.['notification-version']?.toString(), '2')
})

t.test('the consumer group delivers to every open tab of the recipient and to no one else', async (t) => {
  const gateway = await startGateway(t)
  const [emma, bruno, rick] = await Promise.all(['1', '2', '3'].map((id) => signIn(gateway.url, id)))
  const emmaTabs = await Promise.all([FeedClient.connect(gateway.url, emma!), FeedClient.connect(gateway.url, emma!)])
  const rickTab = await FeedClient.connect(gateway.url, rick!)
  const brunoTab = await FeedClient.connect(gateway.url, bruno!)
  const everyone = [...emmaTabs, rickTab, brunoTab]
  t.teardown(() => { for (const client of everyone) client.close() })
  for (const client of everyone) t.equal((await client.next()).type, 'ready')

  const response = await follow(gateway.url, bruno!, '1')
  t.equal(response.status, 202)
  const { notification } = await response.json() as { notification: { id: string } }
  for (const tab of emmaTabs) {
    const frame = await tab.next() as NotificationFrame
    t.equal(frame.type, 'notification')
    t.same(frame.notification.id, notification.id)
    t.match(frame.cursor, /^[0-9a-f]{8}\.\d+\.\d+$/)
    t.equal(frame.unread, 1, 'the frame carries the new unread count: no separate unread frame')
  }

  // Rick follows Bruno: if Emma's follow had leaked to Rick or Bruno, it would come first.
  await follow(gateway.url, rick!, '2')
  const brunoFrame = await brunoTab.next() as NotificationFrame
  t.match(brunoFrame.notification, { userId: '2', actor: { id: '3' } }, 'Bruno gets only his own notification')
  t.equal(rickTab.queued, 0, 'Rick got nothing')
  t.equal(emmaTabs[0]?.queued, 0, 'Emma got nothing more')
})
