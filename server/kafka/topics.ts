import type { Admin } from 'kafkajs'

export interface TopicSpec { topic: string, partitions: number, replicationFactor: number }

/** Creates the topics that do not exist yet; existing ones are left as they are. */
export async function ensureTopics (admin: Admin, specs: TopicSpec[]): Promise<void> {
  const existing = new Set(await admin.listTopics())
  const missing = specs.filter((spec) => !existing.has(spec.topic))
  if (missing.length === 0) return
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map((spec) => ({
      topic: spec.topic,
      numPartitions: spec.partitions,
      replicationFactor: spec.replicationFactor
    }))
  })
}
