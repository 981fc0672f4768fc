// Starts brokers of its own, in temporary directories, next to the one of `npm test`.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Kafka, logLevel, Partitioners } from 'kafkajs'
import t from 'tap'
import { LocalKafkaError, startLocalKafka } from '../../../local/kafka/launcher.js'
import { projectRoot } from '../../../server/project-root.js'
import { tempDir } from '../../helpers/gateway.js'
import { isRunning, secondsUntilGone } from '../../helpers/processes.js'

const fixture = join(projectRoot(), 'test', 'fixtures', 'start-kafka-then-wait.ts')

// A JVM starts slowly on two cores, and this file starts three.
t.setTimeout(180_000)

function client (brokers: string[]): Kafka {
  return new Kafka({ clientId: 'launcher-test', brokers, logLevel: logLevel.ERROR })
}

async function produce (kafka: Kafka, topic: string, value: string): Promise<void> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    await producer.send({ topic, acks: -1, messages: [{ key: 'k', value }] })
  } finally {
    await producer.disconnect()
  }
}

async function firstValue (kafka: Kafka, topic: string): Promise<string | undefined> {
  const consumer = kafka.consumer({ groupId: `launcher-test-${process.pid}-${Date.now()}` })
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    return await new Promise<string | undefined>((resolve, reject) => {
      consumer.run({ eachMessage: async ({ message }) => { resolve(message.value?.toString()) } }).catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
}

t.test('a broker serves, stops, and restarts on the same dir with its data and ports', async t => {
  const dataDir = tempDir(t, 'kafka-notify-launcher-')
  const topic = 'launcher-round-trip'

  const first = await startLocalKafka({ dataDir })
  t.teardown(first.stop)
  t.match(first.brokers, [/^127\.0\.0\.1:\d+$/])
  const admin = client(first.brokers).admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
  await admin.disconnect()
  await produce(client(first.brokers), topic, 'kept across restarts')
  t.equal(await firstValue(client(first.brokers), topic), 'kept across restarts', 'round trip')

  await first.stop()
  t.notOk(isRunning(first.pid), 'the JVM is gone once stop() resolves')
  await t.resolves(first.stop(), 'stop() again is a no-op')

  const second = await startLocalKafka({ dataDir })
  t.teardown(second.stop)
  t.same(second.brokers, first.brokers, 'same address after a restart')
  t.equal(await firstValue(client(second.brokers), topic), 'kept across restarts', 'data kept')
  await second.stop()
})

t.test('the broker dies with the Node process that started it, even on SIGKILL', async t => {
  const dataDir = tempDir(t, 'kafka-notify-orphan-')
  const owner = spawn(process.execPath, ['--import', 'tsx', fixture, dataDir], {
    cwd: projectRoot(),
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { owner.kill('SIGKILL') })
  const ready = once(createInterface({ input: owner.stdout }), 'line') as Promise<[string]>
  const exitedEarly = once(owner, 'exit').then(([code]) => { throw new Error(`fixture exited with ${String(code)}`) })
  const [line] = await Promise.race([ready, exitedEarly])
  const { pid } = JSON.parse(line) as { pid: number }
  t.ok(readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('kafka.Kafka'), `JVM ${pid} runs kafka.Kafka`)

  owner.kill('SIGKILL')
  const seconds = await secondsUntilGone([pid], 30_000)
  t.pass(`the JVM was gone ${seconds} s after its owner was killed`)
})

t.test('without java on PATH, start fails with JAVA_MISSING and names the alternatives', async t => {
  const emptyDir = tempDir(t, 'kafka-notify-no-java-')
  const err = await withPath(emptyDir, async () => await startLocalKafka({ dataDir: emptyDir }).catch((err: unknown) => err))
  t.ok(err instanceof LocalKafkaError)
  t.match(err, { code: 'JAVA_MISSING', message: /Java 17[\s\S]*KAFKA_BROKERS[\s\S]*docker compose up -d/ })
})

t.test('without mvn on PATH and no cached jars, start fails with MAVEN_MISSING', async t => {
  const binDir = tempDir(t, 'kafka-notify-java-only-')
  const java = execFileSync('sh', ['-c', 'command -v java'], { encoding: 'utf8' }).trim()
  await symlink(java, join(binDir, 'java'))
  const cacheDir = tempDir(t, 'kafka-notify-empty-cache-')
  const dataDir = tempDir(t, 'kafka-notify-no-maven-')
  const err = await withPath(binDir, async () => await startLocalKafka({ dataDir, cacheDir }).catch((err: unknown) => err))
  t.ok(err instanceof LocalKafkaError)
  t.match(err, { code: 'MAVEN_MISSING', message: /Maven[\s\S]*KAFKA_BROKERS[\s\S]*docker compose up -d/ })
})

async function withPath<T> (path: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH
  process.env.PATH = path
  try {
    return await fn()
  } finally {
    process.env.PATH = saved
  }
}
