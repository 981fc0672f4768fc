// Starts clusters of its own, in temporary directories, next to the broker of `npm test`.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { Kafka, logLevel, Partitioners, type ConfigResourceTypes } from 'kafkajs'
import t from 'tap'
import { startLocalKafkaCluster } from '../../../local/kafka/cluster.js'
import { LocalKafkaError } from '../../../local/kafka/launcher.js'
import { eventually } from '../../helpers/eventually.js'
import { tempDir } from '../../helpers/gateway.js'
import { isRunning, secondsUntilGone } from '../../helpers/processes.js'
import { quiet } from '../../helpers/quiet-log.js'
import { createKafkaBus } from '../../../server/kafka/bus.js'
import { projectRoot } from '../../../server/project-root.js'

/** kafkajs's ConfigResourceTypes.TOPIC; its enum is not among the names its CommonJS build lets ESM import. */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes

// Three JVMs start slowly on two cores, and this file starts two clusters.
t.setTimeout(180_000)

function client (brokers: string[]): Kafka {
  return new Kafka({ clientId: 'cluster-test', brokers, logLevel: logLevel.NOTHING })
}

t.test('three nodes form one cluster with replicated defaults; stop() leaves no JVM, frozen or not; a restart keeps data and addresses', async t => {
  const dataDir = tempDir(t, 'kafka-notify-cluster-test-')
  const startedAt = performance.now()
  const cluster = await startLocalKafkaCluster({ dataDir, brokers: 3 })
  t.teardown(cluster.stop)
  t.comment(`cluster formed in ${((performance.now() - startedAt) / 1000).toFixed(1)} s (first start, storage formatted)`)
  const pids = cluster.nodes.map(node => node.pid)
  t.match(cluster.brokers, [/^127\.0\.0\.1:\d+$/, /^127\.0\.0\.1:\d+$/, /^127\.0\.0\.1:\d+$/])
  t.same(cluster.nodes.map(node => node.id), [1, 2, 3])
  t.same(cluster.nodes.map(node => node.address), cluster.brokers)
  t.ok(pids.every(pid => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('kafka.Kafka')), `JVMs ${pids.join(', ')} run kafka.Kafka`)

  const admin = client(cluster.brokers).admin()
  await admin.connect()
  t.teardown(() => admin.disconnect())
  const described = await admin.describeCluster()
  t.same(described.brokers.map(broker => `${broker.host}:${broker.port}`).sort(), [...cluster.brokers].sort(), 'describeCluster lists the 3 brokers')
  t.same(described.brokers.map(broker => broker.nodeId).sort(), [1, 2, 3])

  await t.test('a topic created with the broker defaults has 3 replicas and min.insync.replicas=2', async t => {
    const topic = 'cluster-defaults'
    // Neither a replication factor nor configs: what the cluster gives any topic.
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
    // A broker may list the topic before it serves it (kafkajs's own waitForLeaders then fails
    // with UNKNOWN_TOPIC_OR_PARTITION): asked until every partition has a leader.
    const metadata = await eventually(`${topic} served with a leader for every partition`,
      async () => await admin.fetchTopicMetadata({ topics: [topic, '__consumer_offsets'] }).catch((error: Error) => error),
      (value) => !(value instanceof Error) && value.topics.every(({ partitions }) => partitions.length > 0 && partitions.every((partition) => partition.leader >= 0)),
      { timeoutMs: 30_000, everyMs: 100 }) as Awaited<ReturnType<typeof admin.fetchTopicMetadata>>
    for (const { name, partitions } of metadata.topics) {
      t.ok(partitions.length > 0, `${name} has partitions`)
      t.same(partitions.map(partition => partition.replicas.length), partitions.map(() => 3), `every partition of ${name} has 3 replicas`)
      t.same(partitions.map(partition => partition.isr.length), partitions.map(() => 3), `all 3 in sync in ${name}`)
    }
    const configs = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: ['min.insync.replicas'] }]
    })
    const entry = configs.resources[0]?.configEntries.find(config => config.configName === 'min.insync.replicas')
    t.equal(entry?.configValue, '2', 'the effective min.insync.replicas of the topic is 2')

    const producer = client(cluster.brokers).producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    t.teardown(() => producer.disconnect())
    const [written] = await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'kept across restarts' }] })
    t.equal(written?.errorCode, 0, 'an acks=-1 write is acknowledged')
  })

  // Several gateways started at once on a new topic: one creates it, the others find it listed
  // but not yet served by every broker. Each must start.
  await t.test('six gateways\' buses started at once on a new topic of the cluster all start', async t => {
    const topic = `concurrent-${Date.now()}`
    const starts = await Promise.allSettled(Array.from({ length: 6 }, async (_, i) => await createKafkaBus({
      brokers: cluster.brokers,
      clientId: `concurrent-${i}`,
      topic,
      dlqTopic: `${topic}.dlq`,
      partitions: 6,
      replicationFactor: 3,
      minInsyncReplicas: 2,
      groupId: `${topic}-group`,
      sendTimeoutMs: 5000,
      beforeCommit: async () => {}
    }, quiet)))
    for (const start of starts) if (start.status === 'fulfilled') t.teardown(() => start.value.close())
    t.same(starts.map(start => start.status === 'rejected' ? String(start.reason) : 'started'), Array(6).fill('started'))
  })

  await t.test('stop() leaves no JVM', async t => {
    await admin.disconnect()
    const stoppedAt = performance.now()
    await cluster.stop()
    t.comment(`stopped in ${((performance.now() - stoppedAt) / 1000).toFixed(1)} s`)
    t.same(pids.filter(isRunning), [], `JVMs ${pids.join(', ')} are gone once stop() resolves`)
    t.same(cluster.nodes.map(node => node.running), [false, false, false])
    await t.resolves(cluster.stop(), 'stop() again is a no-op')
  })

  await t.test('a restart on the same dir has the same addresses, cluster id and data; a frozen node is killed after the grace', async t => {
    const again = await startLocalKafkaCluster({ dataDir, brokers: 3 })
    t.teardown(again.stop)
    t.same(again.brokers, cluster.brokers, 'same addresses')
    const admin = client(again.brokers).admin()
    await admin.connect()
    t.teardown(() => admin.disconnect())
    t.equal((await admin.describeCluster()).clusterId, described.clusterId, 'same cluster id')
    const offsets = await admin.fetchTopicOffsets('cluster-defaults')
    t.equal(offsets.reduce((sum, partition) => sum + Number(partition.high), 0), 1, 'the record written before is there')
    await admin.disconnect()

    // Regression: a stop that outlasted the grace period awaited the JVM's exit with nothing
    // keeping Node running, so the process that stopped the cluster ended half-way (under load).
    const restartedPids = again.nodes.map(node => node.pid)
    const frozen = again.nodes[0]!
    process.kill(frozen.pid, 'SIGSTOP')
    const stoppedAt = performance.now()
    await again.stop()
    const seconds = (performance.now() - stoppedAt) / 1000
    t.ok(seconds >= 15, `a frozen node is killed after the 15 s grace, and stop() waits for it (${seconds.toFixed(1)} s)`)
    t.same(restartedPids.filter(isRunning), [], 'and stop() leaves no JVM again')
  })

  await t.test('the same dir refuses another number of brokers, before starting any', async t => {
    const err = await startLocalKafkaCluster({ dataDir, brokers: 5 }).catch((err: unknown) => err)
    t.ok(err instanceof LocalKafkaError)
    t.match(err, { code: 'START_FAILED', message: /cluster of 3 Kafka brokers, not 5/ })
  })
})

t.test('every node dies with the Node process that started the cluster, even on SIGKILL', async t => {
  const dataDir = tempDir(t, 'kafka-notify-cluster-orphan-')
  const script = 'import { startLocalKafkaCluster } from \'./local/kafka/cluster.ts\'\n' +
    'const cluster = await startLocalKafkaCluster({ dataDir: process.argv[1] })\n' +
    'process.stdout.write(JSON.stringify(cluster.nodes.map(node => node.pid)) + \'\\n\')\n' +
    'setInterval(() => {}, 60_000)\n'
  const owner = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dataDir], {
    cwd: projectRoot(),
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { owner.kill('SIGKILL') })
  const ready = once(createInterface({ input: owner.stdout }), 'line') as Promise<[string]>
  const exitedEarly = once(owner, 'exit').then(([code]) => { throw new Error(`the cluster's owner exited with ${String(code)}`) })
  const [line] = await Promise.race([ready, exitedEarly])
  const pids = JSON.parse(line) as number[]
  t.equal(pids.length, 3)
  t.ok(pids.every(pid => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('kafka.Kafka')), `JVMs ${pids.join(', ')} run kafka.Kafka`)

  owner.kill('SIGKILL')
  // Each watchdog: SIGTERM, then SIGKILL after its 15 s grace.
  const seconds = await secondsUntilGone(pids, 30_000)
  t.pass(`the 3 JVMs were gone ${seconds} s after their owner was killed`)
})

t.test('fewer than 3 brokers is refused: one broker is startLocalKafka', async t => {
  await t.rejects(startLocalKafkaCluster({ dataDir: tempDir(t), brokers: 2 }), RangeError)
})
