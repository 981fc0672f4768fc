import t from 'tap'
import type { ConfigResourceTypes } from 'kafkajs'
import { createKafkaBus, type KafkaBusOptions } from '../../server/kafka/bus.js'
import { KafkaErrorCode } from '../../server/kafka/errors.js'
import { durabilityProblems, type TopicSpec, type TopicState } from '../../server/kafka/topics.js'
import { messageNotification } from '../../server/notification.js'
import { capturingLogger, type LogLine } from '../helpers/capturing-log.js'
import { kafkaBrokers, uniqueName, type TestContext } from '../helpers/gateway.js'
import { testKafka } from '../helpers/kafka.js'

const TOPIC_RESOURCE = 2 as ConfigResourceTypes
/** kafkajs's ConfigSource.TOPIC_CONFIG: set on the topic itself, not inherited from the broker. */
const TOPIC_CONFIG_SOURCE = 1

const spec = (replicationFactor: number, minInsyncReplicas: number): TopicSpec => ({ topic: 'notifications', partitions: 6, replicationFactor, minInsyncReplicas })
const state = (replicationFactor: number, minInsyncReplicas: number | undefined): TopicState => ({ topic: 'notifications', replicationFactor, minInsyncReplicas, maxMessageBytes: 1048588 })

t.test('durabilityProblems: a topic as strong as asked has none', async (t) => {
  t.same(durabilityProblems(spec(3, 2), state(3, 2)), [])
  t.same(durabilityProblems(spec(1, 1), state(1, 1)), [], 'one broker, one copy, as configured')
  t.same(durabilityProblems(spec(3, 2), state(5, 3)), [], 'stronger than asked is fine')
})

t.test('durabilityProblems: min.insync.replicas below what is asked means a 202 can be lost', async (t) => {
  const problems = durabilityProblems(spec(3, 2), state(3, 1))
  t.equal(problems.length, 1)
  t.match(problems[0], /topic notifications has min\.insync\.replicas=1, less than the 2 KAFKA_MIN_INSYNC_REPLICAS asks for/)
  t.match(problems[0], /lost if that broker fails/)
  t.match(problems[0], /--add-config min\.insync\.replicas=2/, 'and says how to fix it')
})

t.test('durabilityProblems: min.insync.replicas above the replicas refuses every write (before Kafka 4) or means fewer copies (Kafka 4)', async (t) => {
  const problems = durabilityProblems(spec(1, 1), state(1, 2))
  t.equal(problems.length, 1)
  t.match(problems[0], /min\.insync\.replicas=2 but only 1 replica\(s\).*before 4\.0 refuses every acks=-1 write.*every POST answers 503/)
  t.match(problems[0], /Kafka 4 counts it as 1, so a 202 means only 1 broker\(s\) had the record/)
})

t.test('durabilityProblems: fewer replicas than configured, and an unreadable setting, are named', async (t) => {
  const weaker = durabilityProblems(spec(3, 2), state(1, 1))
  t.equal(weaker.length, 2)
  t.match(weaker[1], /replication factor 1, less than KAFKA_REPLICATION_FACTOR=3/)
  const unknown = durabilityProblems(spec(3, 2), state(3, undefined))
  t.match(unknown, [/could not read min\.insync\.replicas of topic notifications/])
})

function busOptions (topic: string, overrides: Partial<KafkaBusOptions> = {}): KafkaBusOptions {
  return {
    brokers: kafkaBrokers().split(','),
    clientId: 'topics-test',
    topic,
    dlqTopic: `${topic}.dlq`,
    partitions: 2,
    replicationFactor: 1,
    minInsyncReplicas: 1,
    groupId: uniqueName('group'),
    sendTimeoutMs: 5000,
    beforeCommit: async () => {},
    ...overrides
  }
}

async function admin (t: TestContext): Promise<ReturnType<ReturnType<typeof testKafka>['admin']>> {
  const client = testKafka().admin()
  await client.connect()
  t.teardown(() => client.disconnect())
  return client
}

async function topicConfig (t: TestContext, topic: string, name: string): Promise<{ configValue: string, configSource: number } | undefined> {
  const described = await (await admin(t)).describeConfigs({ includeSynonyms: false, resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: [name] }] })
  return described.resources[0]?.configEntries.find((entry) => entry.configName === name)
}

t.test('the topics the gateway creates carry min.insync.replicas themselves', async (t) => {
  const topic = uniqueName('notifications')
  const bus = await createKafkaBus(busOptions(topic), capturingLogger([]))
  t.teardown(() => bus.close())
  for (const name of [topic, `${topic}.dlq`]) {
    const entry = await topicConfig(t, name, 'min.insync.replicas')
    t.equal(entry?.configValue, '1', `${name}: min(2, RF 1) = 1`)
    t.equal(entry?.configSource, TOPIC_CONFIG_SOURCE, `${name}: set on the topic, not inherited from the broker`)
  }
})

t.test('an existing topic weaker than the config asks is warned about at start-up, naming the topic and the value', async (t) => {
  const topic = uniqueName('notifications')
  const client = await admin(t)
  // As an operator's older set-up would have it: one replica, the broker's default min.insync.replicas.
  await client.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2, replicationFactor: 1 }, { topic: `${topic}.dlq`, numPartitions: 1, replicationFactor: 1 }] })
  const lines: LogLine[] = []
  const bus = await createKafkaBus(busOptions(topic, { replicationFactor: 3, minInsyncReplicas: 2 }), capturingLogger(lines))
  t.teardown(() => bus.close())
  const warnings = lines.filter((line) => line.level === 'warn' && /cannot keep the 202 promise/.test(line.message ?? ''))
  const about = (name: string): LogLine[] => warnings.filter((line) => (line.fields as { topic?: string }).topic === name)
  t.ok(about(topic).some((line) => /min\.insync\.replicas=1, less than the 2/.test(line.message!) && /is lost if that broker fails/.test(line.message!)), 'min.insync.replicas, for the topic')
  t.ok(about(topic).some((line) => /replication factor 1, less than KAFKA_REPLICATION_FACTOR=3/.test(line.message!)), 'and its replication factor')
  t.ok(about(`${topic}.dlq`).length > 0, 'the dead-letter topic too')
  t.match(about(topic)[0]?.fields, { minInsyncReplicas: 1, replicationFactor: 1 })
})

t.test('an existing topic with min.insync.replicas above its replicas is warned about', async (t) => {
  const topic = uniqueName('notifications')
  const client = await admin(t)
  await client.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'min.insync.replicas', value: '2' }] },
      { topic: `${topic}.dlq`, numPartitions: 1, replicationFactor: 1 }
    ]
  })
  const lines: LogLine[] = []
  const bus = await createKafkaBus(busOptions(topic), capturingLogger(lines))
  t.teardown(() => bus.close())
  t.ok(lines.some((line) => line.level === 'warn' && (line.fields as { topic?: string }).topic === topic && /min\.insync\.replicas=2 but only 1 replica/.test(line.message ?? '')))
  // Kafka 4.1 takes the write (it caps the setting at the replica count): one copy behind a 202.
  await t.resolves(bus.publish([messageNotification({ id: '2', name: 'Bruno' }, { id: '1', name: 'Emma' }, 'hi')]), 'this broker writes it with one copy, as the warning says')
})

// Regression: the producer knew no limit but the broker's; a record it can never write
// must fail alone and for good (413), not as a 503 that a retry repeats.
t.test('the topic\'s max.message.bytes is read at start-up: a record over it is refused alone with RECORD_TOO_LARGE', async (t) => {
  const topic = uniqueName('notifications')
  const client = await admin(t)
  await client.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] },
      { topic: `${topic}.dlq`, numPartitions: 1, replicationFactor: 1 }
    ]
  })
  const bus = await createKafkaBus(busOptions(topic), capturingLogger([]))
  t.teardown(() => bus.close())
  const bruno = { id: '2', name: 'Bruno' }
  const emma = { id: '1', name: 'Emma' }
  const [small, large, alsoSmall] = await Promise.allSettled([
    bus.publish([messageNotification(bruno, emma, 'short')]),
    bus.publish([messageNotification(bruno, emma, 'é'.repeat(1000))]),
    bus.publish([messageNotification(bruno, emma, 'also short')])
  ])
  t.equal(small.status, 'fulfilled')
  t.equal(alsoSmall.status, 'fulfilled', 'the records around it were written')
  t.match(large, { status: 'rejected', reason: { code: KafkaErrorCode.RECORD_TOO_LARGE, canRetry: false, limit: 2000 - 61 } })
})
