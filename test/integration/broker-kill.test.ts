import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { FeedClient, follow, signIn } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { startGateway } from '../helpers/gateway.js'
import { testKafka } from '../helpers/kafka.js'
import { startKafkaCluster } from '../helpers/kafka-cluster.js'

// This test kills a broker, so it runs a 3-broker cluster of its own instead of the shared broker.
const SEND_TIMEOUT_MS = 5000
/** A POST must answer within this bound, broker down or not: it may fail, never hang. */
const ANSWER_BOUND_MS = SEND_TIMEOUT_MS + 8000
/**
 * The longest run without a 202: the controller fences a silent broker after
 * broker.session.timeout.ms (9 s) and moves its partitions to the others, then the gateway's
 * producer finds the new leader; measured about 10 s.
 */
const RESUME_BOUND_MS = 30_000
/** Follows accepted after each event before the test goes on: the stream has really resumed. */
const ACCEPTED_AFTER = 10
const FRAME_BOUND_MS = 30_000
const RUN_BOUND_MS = 120_000

interface Answer { key: string, status: number, code?: string, retryAfter: string | null, sentAt: number, answeredAt: number }

t.setTimeout(180_000)

t.test('a broker killed mid-stream: follows go on with at most a brief 503, nothing accepted is lost, the node rejoins', async (t) => {
  const cluster = await startKafkaCluster(t, { log: (line) => { t.comment(line) } })
  const brokers = cluster.brokers.join(',')
  const gateway = await startGateway(t, {
    env: { KAFKA_BROKERS: brokers, KAFKA_REPLICATION_FACTOR: '3', KAFKA_PARTITIONS: '2', KAFKA_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS) }
  })
  const topic = gateway.config.kafka.topic
  const [emma, bruno] = await Promise.all([signIn(gateway.url, '1'), signIn(gateway.url, '2')])
  const tab = await FeedClient.connect(gateway.url, emma)
  t.teardown(() => tab.close())
  t.equal((await tab.next()).type, 'ready')
  const admin = testKafka(brokers).admin()
  await admin.connect()
  t.teardown(() => admin.disconnect())

  // One sender, one follow at a time, each with its Idempotency-Key and retried with it until
  // accepted, honouring Retry-After, as a careful client would: a 503 is "not known to be
  // written", and the retry must not double what was.
  const accepted: string[] = []
  const answers: Answer[] = []
  const waiters: Array<{ count: number, resolve: () => void }> = []
  const accept = (id: string): void => {
    accepted.push(id)
    for (const waiter of waiters.filter((entry) => accepted.length >= entry.count)) {
      waiters.splice(waiters.indexOf(waiter), 1)
      waiter.resolve()
    }
  }
  const control = { sending: true }
  const followUntilAccepted = async (key: string): Promise<void> => {
    const deadline = Date.now() + RUN_BOUND_MS
    while (Date.now() < deadline) {
      const sentAt = performance.now()
      const response = await follow(gateway.url, bruno, '1', { 'idempotency-key': key }, AbortSignal.timeout(ANSWER_BOUND_MS))
      const body = await response.json() as { notification?: { id: string }, code?: string }
      const retryAfter = response.headers.get('retry-after')
      answers.push({ key, status: response.status, ...(body.code === undefined ? {} : { code: body.code }), retryAfter, sentAt, answeredAt: performance.now() })
      if (response.status === 202) return accept(body.notification!.id)
      await delay(Math.min(Number(retryAfter) || 1, 5) * 1000)
    }
    throw new Error(`follow ${key} was not accepted within ${RUN_BOUND_MS} ms`)
  }
  const stream = (async () => {
    for (let i = 0; control.sending && i < 10_000; i++) await followUntilAccepted(`kill-${i}`)
  })()
  // A failed stream ends the waits below at once, with its own error.
  const failed = stream.then(() => { throw new Error('the stream of follows ended early') })
  failed.catch(() => {})
  /** Resolves once `count` more follows are accepted, within the run bound. */
  const acceptedSoon = async (count: number, what: string): Promise<void> => {
    const target = accepted.length + count
    const reached = new Promise<void>((resolve) => waiters.push({ count: target, resolve }))
    const timer = new AbortController()
    const timeout = delay(RUN_BOUND_MS, undefined, { signal: timer.signal })
      .then(() => { throw new Error(`only ${accepted.length} of ${target} follows accepted ${what} within ${RUN_BOUND_MS} ms`) })
    try {
      await Promise.race([reached, failed, timeout])
    } finally {
      timer.abort()
      timeout.catch(() => {})
    }
  }

  await acceptedSoon(ACCEPTED_AFTER, 'before the kill')
  // Every follow is for user 1, so they all go to one partition: the one that holds records.
  const offsets = await admin.fetchTopicOffsets(topic)
  const partition = offsets.find((entry) => Number(entry.high) > 0)!.partition
  const leaderOf = async (): Promise<{ leader: number, isr: number[] }> => {
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
    const found = metadata.topics[0]!.partitions.find((entry) => entry.partitionId === partition)!
    return { leader: found.leader, isr: found.isr }
  }
  const { leader } = await leaderOf()
  const victim = cluster.nodes.find((node) => node.id === leader)!
  const victimPid = victim.pid

  await t.test(`SIGKILL of the partition's leader (broker ${leader}) mid-stream`, async (t) => {
    const killedAt = performance.now()
    await victim.kill('SIGKILL')
    t.notOk(victim.running, `the JVM ${victimPid} of broker ${leader} is gone`)
    const acceptedBefore = accepted.length
    await acceptedSoon(ACCEPTED_AFTER, 'after the kill')
    const firstAfter = answers.find((answer) => answer.status === 202 && answer.sentAt > killedAt)!
    const outage = answers.filter((answer) => answer.answeredAt > killedAt && answer.status !== 202).length
    t.ok(firstAfter.answeredAt - killedAt <= RESUME_BOUND_MS,
      `202s resumed ${((firstAfter.answeredAt - killedAt) / 1000).toFixed(1)} s after the kill, after ${outage} 503(s) (bound ${RESUME_BOUND_MS / 1000} s)`)
    t.ok(accepted.length >= acceptedBefore + ACCEPTED_AFTER, 'and kept coming')
    const now = await leaderOf()
    t.not(now.leader, leader, `another broker leads the partition (${now.leader})`)
    t.notOk(now.isr.includes(leader), `the killed broker left its in-sync replicas (${now.isr.join(',')})`)
  })

  await t.test(`broker ${leader} restarted mid-stream: the cluster is whole again`, async (t) => {
    await victim.start()
    t.ok(victim.running && victim.pid !== victimPid, `broker ${leader} runs again (JVM ${victim.pid})`)
    await acceptedSoon(ACCEPTED_AFTER, 'after the restart')
    t.same((await admin.describeCluster()).brokers.map((broker) => broker.nodeId).sort(), [1, 2, 3], 'describeCluster lists 3 brokers')
    // The restarted broker catches up with the leader before it is in sync again; nothing to await but the state.
    const { isr } = await eventually('3 replicas in sync', leaderOf, (partition) => partition.isr.length === 3, { timeoutMs: RUN_BOUND_MS, everyMs: 200 })
    t.same([...isr].sort(), [1, 2, 3], 'all 3 replicas of the partition are in sync again')
  })

  control.sending = false
  await stream
  const unexpected = answers.filter((answer) => answer.status !== 202 &&
    !(answer.status === 503 && answer.code === 'KAFKA_UNAVAILABLE' && answer.retryAfter !== null))
  t.same(unexpected, [], `every one of the ${answers.filter((answer) => answer.status !== 202).length} answers other than 202 was 503 KAFKA_UNAVAILABLE with Retry-After`)
  let longestGap = 0
  let last = answers[0]!.answeredAt
  for (const answer of answers) {
    if (answer.status !== 202) continue
    longestGap = Math.max(longestGap, answer.answeredAt - last)
    last = answer.answeredAt
  }
  t.ok(longestGap <= RESUME_BOUND_MS, `202s never stopped for longer than ${RESUME_BOUND_MS / 1000} s (longest gap ${(longestGap / 1000).toFixed(1)} s)`)
  t.equal(new Set(accepted).size, accepted.length, 'each key was accepted once, with its own id')

  // One more follow after everything: one user's records share a partition, so a duplicate of an
  // accepted follow would reach the tab before it.
  await followUntilAccepted('marker')
  const marker = accepted.at(-1)!
  const received: string[] = []
  for (let frames = 0; frames < 10 * accepted.length; frames++) {
    const frame = await tab.next(FRAME_BOUND_MS)
    if (frame.type !== 'notification') continue
    const id = frame.notification.id
    received.push(id)
    if (id === marker) break
  }
  t.same(received, accepted, `every one of the ${accepted.length} accepted follows reached the open tab exactly once, in the order accepted`)
})
