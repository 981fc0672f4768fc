import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startLocalKafkaCluster, type LocalKafkaCluster, type LocalKafkaClusterOptions } from '../../local/kafka/cluster.js'
import type { TestContext } from './gateway.js'

export type KafkaClusterOptions = Omit<LocalKafkaClusterOptions, 'dataDir'>

/**
 * Starts a local KRaft cluster (3 brokers unless told) for one test file, in a temporary dir of
 * its own. Teardown stops every node and removes the dir, whichever way the test ends; if the
 * test process dies first, each node's watchdog stops its JVM.
 */
export async function startKafkaCluster (t: TestContext, options: KafkaClusterOptions = {}): Promise<LocalKafkaCluster> {
  const dataDir = await mkdtemp(join(tmpdir(), 'kafka-notify-cluster-'))
  // Teardowns run last-added first: the nodes stop, then their dir goes. A start that fails
  // stops the nodes it started itself.
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const cluster = await startLocalKafkaCluster({ dataDir, ...options })
  t.teardown(cluster.stop)
  return cluster
}
