import { setTimeout as delay } from 'node:timers/promises'
import type { Admin, ConfigResourceTypes } from 'kafkajs'

export interface TopicSpec {
  topic: string
  partitions: number
  replicationFactor: number
  /** With acks=-1, how many replicas must have a record before Kafka acknowledges it. */
  minInsyncReplicas: number
}

/** What an existing topic really has, read back from the cluster. */
export interface TopicState {
  topic: string
  /** The fewest replicas of any of its partitions. */
  replicationFactor: number
  /** undefined: the setting could not be read. */
  minInsyncReplicas: number | undefined
  /** The largest record batch the topic accepts; undefined: could not be read. */
  maxMessageBytes: number | undefined
}

const MIN_INSYNC_REPLICAS = 'min.insync.replicas'
const MAX_MESSAGE_BYTES = 'max.message.bytes'
/** kafkajs's ConfigResourceTypes.TOPIC; its enum is not among the names its CommonJS build lets ESM import. */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes
/** How long a topic may be listed before the broker asked serves it (another gateway just made it). */
const SERVED_BOUND_MS = 15_000

/**
 * Creates the topics that do not exist yet (with min.insync.replicas set, so acks=-1 means what
 * the config says), then reads back what every one of them really has: an existing topic is left
 * as it is, and may be weaker than wanted.
 */
export async function ensureTopics (admin: Admin, specs: TopicSpec[]): Promise<TopicState[]> {
  const existing = new Set(await admin.listTopics())
  const missing = specs.filter((spec) => !existing.has(spec.topic))
  if (missing.length > 0) {
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({
          topic: spec.topic,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor,
          configEntries: [{ name: MIN_INSYNC_REPLICAS, value: String(spec.minInsyncReplicas) }]
        }))
      })
    } catch (error) {
      // Created, but kafkajs's wait for the leaders asked a broker that does not serve the topic
      // yet, and gave up: the wait goes on below.
      if (!isNotServedYet(error)) throw error
    }
  }
  return await untilServed(async () => await describeTopics(admin, specs.map((spec) => spec.topic)))
}

/**
 * A topic just created (by this gateway, or by another one starting at the same moment) is listed
 * before every broker serves it: the broker asked answers UNKNOWN_TOPIC_OR_PARTITION, which
 * kafkajs does not retry here. Asks again, 100 ms, 200 ms… 1 s apart, within SERVED_BOUND_MS.
 */
async function untilServed<T> (read: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + SERVED_BOUND_MS
  for (let pause = 100; ; pause = Math.min(pause * 2, 1000)) {
    try {
      return await read()
    } catch (error) {
      if (!isNotServedYet(error) || Date.now() + pause > deadline) throw error
    }
    await delay(pause)
  }
}

class NotServedYet extends Error {}

/** A topic that exists, on a broker that does not serve it (or its leader) yet. */
function isNotServedYet (error: unknown): boolean {
  const type = (error as { type?: unknown }).type
  return error instanceof NotServedYet || type === 'UNKNOWN_TOPIC_OR_PARTITION' || type === 'LEADER_NOT_AVAILABLE'
}

async function describeTopics (admin: Admin, topics: string[]): Promise<TopicState[]> {
  const metadata = await admin.fetchTopicMetadata({ topics })
  // What createTopics' waitForLeaders gives, kept when its wait gave up early (see ensureTopics).
  const leaderless = metadata.topics.find((entry) => entry.partitions.length === 0 || entry.partitions.some((partition) => partition.leader < 0))
  if (leaderless !== undefined) throw new NotServedYet(`topic ${leaderless.name} has a partition without a leader yet`)
  const configs = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topics.map((name) => ({ type: TOPIC_RESOURCE, name, configNames: [MIN_INSYNC_REPLICAS, MAX_MESSAGE_BYTES] }))
  }).catch(() => undefined)
  return topics.map((topic) => {
    const partitions = metadata.topics.find((entry) => entry.name === topic)?.partitions ?? []
    const entries = configs?.resources.find((resource) => resource.resourceName === topic)?.configEntries ?? []
    const value = (name: string): number | undefined => {
      const found = entries.find((entry) => entry.configName === name)?.configValue
      return found === undefined || found === null || found === '' ? undefined : Number(found)
    }
    return {
      topic,
      replicationFactor: partitions.length === 0 ? 0 : Math.min(...partitions.map((partition) => partition.replicas.length)),
      minInsyncReplicas: value(MIN_INSYNC_REPLICAS),
      maxMessageBytes: value(MAX_MESSAGE_BYTES)
    }
  })
}

/**
 * Why a topic cannot keep the promise of a 202 ("Kafka has it, it will not be lost"), or can
 * keep it only by refusing every write. Empty when the topic is as strong as the config asks.
 */
export function durabilityProblems (spec: TopicSpec, state: TopicState): string[] {
  const problems: string[] = []
  const { topic } = spec
  const minInsync = state.minInsyncReplicas
  if (minInsync === undefined) {
    problems.push(`could not read ${MIN_INSYNC_REPLICAS} of topic ${topic}: a 202 may mean that only the partition leader has the record`)
    return problems
  }
  if (minInsync > state.replicationFactor) {
    // Measured on Kafka 4.1 (KIP-966): the broker caps the setting at the replica count and writes.
    problems.push(`topic ${topic} has ${MIN_INSYNC_REPLICAS}=${minInsync} but only ${state.replicationFactor} replica(s): ` +
      'Kafka before 4.0 refuses every acks=-1 write (NOT_ENOUGH_REPLICAS), so every POST answers 503; ' +
      `Kafka 4 counts it as ${state.replicationFactor}, so a 202 means only ${state.replicationFactor} broker(s) had the record. ` +
      `Set it to at most the replication factor: kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config ${MIN_INSYNC_REPLICAS}=${Math.min(spec.minInsyncReplicas, state.replicationFactor)}`)
  } else if (minInsync < spec.minInsyncReplicas) {
    problems.push(`topic ${topic} has ${MIN_INSYNC_REPLICAS}=${minInsync}, less than the ${spec.minInsyncReplicas} KAFKA_MIN_INSYNC_REPLICAS asks for: ` +
      `a 202 means only ${minInsync} broker(s) had the record, and it is lost if ${minInsync === 1 ? 'that broker fails' : 'they fail'} before another copy is made. ` +
      `Raise it: kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config ${MIN_INSYNC_REPLICAS}=${spec.minInsyncReplicas}`)
  }
  if (state.replicationFactor < spec.replicationFactor) {
    problems.push(`topic ${topic} has replication factor ${state.replicationFactor}, less than KAFKA_REPLICATION_FACTOR=${spec.replicationFactor}: ` +
      'an existing topic is left as it is; raise it with a partition reassignment')
  }
  return problems
}
