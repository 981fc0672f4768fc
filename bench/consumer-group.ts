import { Kafka, logLevel } from 'kafkajs'
import { groupAssignment } from '../test/helpers/kafka.js'
import { sleep } from './clock.js'

/** Partitions of `topic` per member of a consumer group, as the broker assigned them. */
export type Assignment = number[][]

const POLL_MS = 500

/**
 * Waits until `members` members of the group each hold at least one partition of `topic` (every
 * gateway consumes) or `timeoutMs` passed; returns the last assignment seen, one list per member.
 */
export async function waitForAssignment (brokers: string[], groupId: string, topic: string, members: number, timeoutMs: number): Promise<Assignment> {
  const admin = new Kafka({ clientId: 'kafka-notify-bench-admin', brokers, logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    const deadline = Date.now() + timeoutMs
    let assignment: Assignment = []
    do {
      assignment = [...(await groupAssignment(admin, groupId, topic)).values()].map((partitions) => [...partitions].sort((a, b) => a - b))
      if (assignment.length >= members && assignment.every((partitions) => partitions.length > 0)) return assignment
      await sleep(POLL_MS)
    } while (Date.now() < deadline)
    return assignment
  } finally {
    await admin.disconnect()
  }
}
