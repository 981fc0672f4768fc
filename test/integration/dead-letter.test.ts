import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { FeedClient, follow, signIn, type NotificationFrame } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { startGateway, tempDir } from '../helpers/gateway.js'
import { rawProducer, readTopic, recordCount } from '../helpers/kafka.js'
import { InboxUnavailableError } from '../../server/inbox/types.js'
import { followNotification } from '../../server/notification.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }

t.test('poison records go to the DLQ with their reason; the next good record is still delivered', async (t) => {
  const gateway = await startGateway(t)
  const { topic, dlqTopic } = gateway.config.kafka
  const token = await signIn(gateway.url, '1')
  const tab = await FeedClient.connect(gateway.url, token)
  t.teardown(() => tab.close())
  t.equal((await tab.next()).type, 'ready')

  const good = followNotification(bruno, emma)
  const wrongType = { ...followNotification(bruno, emma), type: 'Poke!' }
  const poison = [
    { key: '1', value: 'not json {', kind: 'not-json' },
    { key: '1', value: JSON.stringify({ hello: 'world' }), kind: 'invalid' },
    { key: '1', value: JSON.stringify({ ...followNotification(bruno, emma), userId: 1 }), kind: 'invalid' },
    { key: '1', value: JSON.stringify(wrongType), kind: 'invalid' },
    { key: '1', value: 'x'.repeat(70 * 1024), kind: 'too-large' },
    { key: null, value: JSON.stringify(followNotification(bruno, emma)), kind: 'missing-key' },
    { key: '2', value: JSON.stringify(followNotification(bruno, emma)), kind: 'key-mismatch' },
    { key: '1', value: JSON.stringify({ ...followNotification(bruno, emma), url: 'javascript:alert(1)' }), kind: 'invalid' },
    { key: '1', value: JSON.stringify({ from: { id: 2, name: 'Bruno' }, to: { id: 1 }, message: 'hi' }), kind: 'invalid' },
    { key: '1', value: '', kind: 'empty' }
  ]
  const producer = await rawProducer(t)
  // All in one partition (key '1'), so the good record comes after every poison one.
  await producer.send({
    topic,
    messages: [
      ...poison.map(({ key, value }) => ({ key, value, partition: 0 })),
      { key: '1', value: JSON.stringify(good), partition: 0 }
    ]
  })

  const frame = await tab.next() as NotificationFrame
  t.equal(frame.type, 'notification', 'the consumer went on past the poison')
  t.equal(frame.notification.id, good.id)

  const dead = await readTopic(t, dlqTopic, poison.length)
  t.equal(dead.length, poison.length, 'every poison record is in the DLQ')
  const reasons = dead.map((message) => message.headers?.['dlq-reason']?.toString() ?? '')
  t.same(reasons.map((reason) => reason.split(':')[0]), poison.map((p) => p.kind), 'each with the reason, in order')
  for (const message of dead) {
    t.equal(message.headers?.['dlq-source-topic']?.toString(), topic)
    t.match(message.headers?.['dlq-source-offset']?.toString(), /^\d+$/)
  }
  t.equal(dead[0]?.value?.toString(), 'not json {', 'the original bytes are kept')

  const metrics = await (await fetch(`${gateway.url}/metrics`)).text()
  t.match(metrics, /notify_dlq_records_total\{reason="invalid"\} 5/)
  t.match(metrics, /notify_dlq_records_total\{reason="not-json"\} 1/)
})

// A batch stalled while the inbox is unavailable is handled again and again; its poison records must
// reach the DLQ once, not once per attempt.
t.test('a batch retried while the inbox is unavailable dead-letters its poison record once', async (t) => {
  const gateway = await startGateway(t)
  const { topic, dlqTopic } = gateway.config.kafka
  const tab = await FeedClient.connect(gateway.url, await signIn(gateway.url, '1'))
  t.teardown(() => tab.close())
  t.equal((await tab.next()).type, 'ready')

  const { inbox } = gateway.services
  const append = inbox.append.bind(inbox)
  let failures = 0
  inbox.append = async (...records: Parameters<typeof append>) => {
    if (failures < 3) {
      failures++
      throw new InboxUnavailableError('injected: the inbox is down')
    }
    return await append(...records)
  }
  t.teardown(() => { inbox.append = append })

  const good = followNotification(bruno, emma)
  const producer = await rawProducer(t)
  await producer.send({ topic, messages: [{ key: '1', value: 'not json {', partition: 0 }, { key: '1', value: JSON.stringify(good), partition: 0 }] })

  const frame = await tab.next(30_000) as Partial<NotificationFrame>
  t.equal(frame.notification?.id, good.id, 'delivered once the inbox is back')
  t.equal(failures, 3, 'the batch was retried through three failed appends')
  // The DLQ send of a batch comes before its append: by now every attempt has sent what it would.
  t.equal(await recordCount(dlqTopic), 1, 'one record in the DLQ, not one per attempt')
})

// Regression: during a rolling change of USERS_FILE, a gateway with the new file
// accepts a follow to a new user, and a gateway with the old file consumes it. A 202 is a promise:
// the consumer stores what any producer wrote, whatever its own directory says.
t.test('a follow to a user only the accepting gateway\'s USERS_FILE knows is stored by a consumer whose directory lacks it, not dead-lettered', async (t) => {
  const consumer = await startGateway(t)
  const { topic, dlqTopic } = consumer.config.kafka
  const usersFile = join(tempDir(t), 'users.json')
  writeFileSync(usersFile, JSON.stringify([emma, bruno, { id: '5', name: 'Nora' }]))
  // The new gateway only produces here: its own group and inbox are beside the point.
  const accepting = await startGateway(t, { env: { KAFKA_TOPIC: topic, KAFKA_DLQ_TOPIC: dlqTopic, USERS_FILE: usersFile } })
  t.equal(consumer.services.directory.get('5'), undefined, 'the consuming gateway does not know Nora')

  const response = await follow(accepting.url, await signIn(accepting.url, '1'), '5')
  t.equal(response.status, 202, 'the gateway that knows Nora accepts the follow')
  const { notification } = await response.json() as { notification: { id: string } }

  const { inbox } = consumer.services
  await eventually('Nora\'s feed has a notification', async () => (await inbox.feed('5')).newestSeq, (newestSeq) => newestSeq > 0, { timeoutMs: 20_000, everyMs: 50 })
  t.same((await inbox.history('5', 10)).items.map((item) => item.notification.id), [notification.id], 'the consuming gateway stored it in Nora\'s feed')
  t.equal(await recordCount(dlqTopic), 0, 'and dead-lettered nothing')
})
