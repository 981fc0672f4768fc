import t from 'tap'
import { startLocalKafka, type LocalKafka } from '../../local/kafka/launcher.js'
import { FeedClient, follow, readiness, signIn } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { startGateway, tempDir } from '../helpers/gateway.js'
import { recordCount } from '../helpers/kafka.js'
import { freeze } from '../helpers/processes.js'

// These tests stop and freeze a broker, so they run their own instead of the shared one.
const SEND_TIMEOUT_MS = 2000
/** A POST must answer within this bound while the broker is gone: it may fail, never hang. */
const ANSWER_BOUND_MS = SEND_TIMEOUT_MS + 8000
const RECOVERY_BOUND_MS = 90_000
/** Each follow attempt is bounded itself; between two, a pause. */
const RETRY = { timeoutMs: RECOVERY_BOUND_MS, everyMs: 100 }

t.test('broker outages: 503 in bounded time, nothing half-written, recovery by itself', async (t) => {
  const kafkaDir = tempDir(t)
  let kafka: LocalKafka = await startLocalKafka({ dataDir: kafkaDir })
  t.teardown(() => kafka.stop())
  const brokers = kafka.brokers.join(',')
  const gateway = await startGateway(t, { env: { KAFKA_BROKERS: brokers, KAFKA_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS) } })
  const [emma, bruno] = await Promise.all([signIn(gateway.url, '1'), signIn(gateway.url, '2')])
  const tab = await FeedClient.connect(gateway.url, emma)
  t.teardown(() => tab.close())
  t.equal((await tab.next()).type, 'ready')

  const accepted: string[] = []
  const received: string[] = []
  // Each follow has an Idempotency-Key and is retried with it until accepted, as a careful client
  // would: a 503 is "not known to be written", and the retry must not double what was.
  const followOnce = async (key: string): Promise<number> => {
    const response = await follow(gateway.url, bruno, '1', { 'idempotency-key': key }, AbortSignal.timeout(ANSWER_BOUND_MS))
    const body = await response.json() as { notification?: { id: string }, code?: string }
    if (response.status === 202) accepted.push(body.notification!.id)
    else {
      t.equal(response.status, 503, 'a follow that Kafka did not take answers 503')
      t.equal(body.code, 'KAFKA_UNAVAILABLE')
      t.ok(response.headers.get('retry-after'), 'with Retry-After')
    }
    return response.status
  }
  const receiveAccepted = async (): Promise<void> => {
    while (received.length < accepted.length) {
      const frame = await tab.next(RECOVERY_BOUND_MS)
      if (frame.type === 'notification') received.push(frame.notification.id)
    }
    t.same(received, accepted, 'every accepted follow reached the open tab exactly once, in order')
  }

  t.equal(await followOnce('healthy'), 202, 'healthy broker: accepted')
  await receiveAccepted()

  await t.test('broker stopped', async (t) => {
    await kafka.stop()
    t.equal(await followOnce('while-down'), 503, 'a follow while the broker is down answers 503')
    const ready = await fetch(`${gateway.url}/readyz`)
    t.equal(ready.status, 503, '/readyz says not ready')
    const { status, reasons } = await ready.json() as { status: string, reasons: string[] }
    t.equal(status, 'not ready')
    t.ok(reasons.some((reason) => /Kafka unreachable/.test(reason)), `and why: ${reasons.join('; ')}`)

    kafka = await startLocalKafka({ dataDir: kafkaDir })
    t.equal(kafka.brokers.join(','), brokers, 'the broker is back on the same address')
    await eventually('a follow accepted again', () => followOnce('while-down'), (status) => status === 202, RETRY)
    await receiveAccepted()
    await eventually('/readyz recovered', () => readiness(gateway.url), ({ status }) => status === 200, RETRY)
  })

  await t.test('broker frozen (SIGSTOP)', async (t) => {
    let thawed = false
    const thaw = (): void => { if (!thawed) process.kill(kafka.pid, 'SIGCONT'); thawed = true }
    t.teardown(thaw)
    await freeze(kafka.pid)
    t.equal(await followOnce('while-frozen'), 503, 'a follow while the broker is frozen answers 503 instead of hanging')
    thaw()
    await eventually('a follow accepted again', () => followOnce('while-frozen'), (status) => status === 202, RETRY)
    await receiveAccepted()
    // The frozen broker may still write the attempt that timed out; the retry reused its id.
    t.equal(await followOnce('after-thaw'), 202)
    await receiveAccepted()
  })

  t.equal(new Set(accepted).size, accepted.length, 'each key was accepted once')
  // A 503 means "not known to be written": a frozen broker may still write what timed out. The
  // topic may hold those, never a record the gateway half-wrote.
  const records = await recordCount(gateway.config.kafka.topic, brokers)
  t.ok(records >= accepted.length, `the topic holds every accepted follow (${records} records, ${accepted.length} accepted)`)
  const history = await fetch(`${gateway.url}/api/notifications?limit=100`, { headers: { authorization: `Bearer ${emma}` } })
  const ids = (await history.json() as { items: Array<{ id: string }> }).items.map((item) => item.id)
  t.equal(new Set(ids).size, ids.length, 'no notification is stored twice')
  for (const id of accepted) t.ok(ids.includes(id), `accepted ${id} is in the inbox`)
})
