import { AssignerProtocol, Kafka, logLevel, Partitioners, type Admin, type KafkaMessage } from 'kafkajs'
import { kafkaBrokers, uniqueName, type TestContext } from './gateway.js'

/** A kafkajs client on the test run's broker, for tests that look at or write raw records. */
export function testKafka (brokers = kafkaBrokers()): Kafka {
  return new Kafka({ clientId: 'kafka-notify-tests', brokers: brokers.split(','), logLevel: logLevel.NOTHING })
}

/** Reads every record of `topic` from the beginning until `count` arrived (bounded by `timeoutMs`). */
export async function readTopic (t: TestContext, topic: string, count: number, timeoutMs = 20_000): Promise<KafkaMessage[]> {
  const consumer = testKafka().consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 100 })
  t.teardown(() => consumer.disconnect())
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const messages: KafkaMessage[] = []
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${messages.length} of ${count} records in ${topic} after ${timeoutMs} ms`)), timeoutMs)
    consumer.run({
      eachMessage: async ({ message }) => {
        messages.push(message)
        if (messages.length >= count) {
          clearTimeout(timer)
          resolve()
        }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  return messages
}

/** A producer that writes raw records (poison included) straight to the broker. */
export async function rawProducer (t: TestContext): Promise<ReturnType<Kafka['producer']>> {
  const producer = testKafka().producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  t.teardown(() => producer.disconnect())
  return producer
}

/** The end offsets of every partition of `topic`, summed: how many records it holds. */
export async function recordCount (topic: string, brokers?: string): Promise<number> {
  const admin = testKafka(brokers).admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    return offsets.reduce((sum, partition) => sum + Number(partition.high) - Number(partition.low), 0)
  } finally {
    await admin.disconnect()
  }
}

/**
 * Which partitions of `topic` each member of `groupId` consumes, by the member's client id; empty
 * while the group is not stable (rebalancing, or waiting for a dead member's session timeout).
 */
export async function groupAssignment (admin: Admin, groupId: string, topic: string): Promise<Map<string, number[]>> {
  const { groups: [group] } = await admin.describeGroups([groupId])
  if (group?.state !== 'Stable') return new Map()
  return new Map(group.members.map((member) => [member.clientId, AssignerProtocol.MemberAssignment.decode(member.memberAssignment)?.assignment[topic] ?? []]))
}
