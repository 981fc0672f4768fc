import t from 'tap'
import { startLocalKafka } from '../../local/kafka/launcher.js'
import { FeedClient, follow, signIn } from '../helpers/clients.js'
import { tempDir, testEnv } from '../helpers/gateway.js'
import { spawnGateway } from '../helpers/gateway-process.js'

const CLIENTS = 1000
const GRACE_MS = 10_000
const SENDERS = 10

t.test(`SIGTERM with ${CLIENTS} clients and follows in flight: clean answers, going-away, exit in the grace period, nothing lost`, async (t) => {
  const env = { ...testEnv(tempDir(t)), AUTH_SECRET: 'shutdown-test-secret-long-enough-000', SHUTDOWN_GRACE_MS: String(GRACE_MS) }
  const gateway = await spawnGateway(t, env)
  const [emma, bruno] = await Promise.all([signIn(gateway.url, '1'), signIn(gateway.url, '2')])
  const clients: FeedClient[] = []
  for (let i = 0; i < CLIENTS; i += 100) {
    clients.push(...await Promise.all(Array.from({ length: 100 }, () => FeedClient.connect(gateway.url, i % 200 === 0 ? emma : bruno))))
  }
  t.teardown(() => { for (const client of clients) client.close() })

  const accepted: string[] = []
  const outcomes = new Map<string, number>()
  const stop = { requested: false }
  const sender = async (): Promise<void> => {
    while (!stop.requested) {
      try {
        const response = await follow(gateway.url, bruno, '1')
        const outcome = String(response.status)
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
        if (response.status === 202) accepted.push(((await response.json()) as { notification: { id: string } }).notification.id)
        else await response.arrayBuffer()
      } catch {
        outcomes.set('connection closed', (outcomes.get('connection closed') ?? 0) + 1)
        return
      }
    }
  }
  const senders = Array.from({ length: SENDERS }, sender)
  while (accepted.length < 200) await new Promise((resolve) => setImmediate(resolve))

  const closes = Promise.all(clients.map((client) => client.closed))
  const exit = await gateway.kill('SIGTERM')
  stop.requested = true
  await Promise.all(senders)
  t.equal(exit, 'exit code 0', 'the gateway exited cleanly within its grace period')
  const codes = new Set((await closes).map((close) => close.code))
  t.same([...codes], [1001], `all ${CLIENTS} sockets were closed with going-away (1001)`)
  const unexpected = [...outcomes.keys()].filter((outcome) => !['202', '503', 'connection closed'].includes(outcome))
  t.same(unexpected, [], `in-flight follows finished or failed cleanly (${JSON.stringify(Object.fromEntries(outcomes))})`)
  t.ok(gateway.logs.some((line) => line.includes('Shutting down')), 'it logged the shutdown')

  const again = await spawnGateway(t, env)
  const tab = await FeedClient.connect(again.url, emma, { since: '0' })
  t.teardown(() => tab.close())
  const missing = new Set(accepted)
  while (missing.size > 0) {
    const frame = await tab.next(60_000)
    if (frame.type === 'notification') missing.delete(frame.notification.id)
  }
  t.equal(missing.size, 0, `after a restart, all ${accepted.length} accepted follows are there`)
})

const CRASH_BOUND_MS = 120_000

// Regression: during a broker outage bus.close() threw (kafkajs's pause() has no group
// after a crash), so the inbox was not closed, the producer not disconnected, the broker not
// stopped, and the process exited 1.
t.test('SIGTERM while the broker is down and the consumer crashed: every shutdown step runs, exit 0', async (t) => {
  // This test stops a broker, so it runs its own.
  const kafka = await startLocalKafka({ dataDir: tempDir(t) })
  t.teardown(() => kafka.stop())
  const env = {
    ...testEnv(tempDir(t), { KAFKA_BROKERS: kafka.brokers.join(','), KAFKA_SEND_TIMEOUT_MS: '2000' }),
    AUTH_SECRET: 'shutdown-test-secret-long-enough-000',
    SHUTDOWN_GRACE_MS: String(GRACE_MS)
  }
  const gateway = await spawnGateway(t, env)
  t.equal((await fetch(`${gateway.url}/readyz`)).status, 200, 'joined before the outage')

  // SIGTERM the moment the consumer is reported lost: from then until its restart it has no group.
  // kafkajs restarts a consumer that crashed on a retriable error ("crashed"); on another error it
  // stops, and the gateway restarts it ("stopped after"). Which one an outage gives depends on the
  // request the broker's stop interrupts.
  const LOST = /Kafka consumer (crashed|stopped after)/
  let signalled = false
  const crashed = new Promise<string>((resolve) => {
    gateway.onLine((line) => {
      if (signalled || !LOST.test(line)) return
      signalled = true
      void gateway.kill('SIGTERM')
      resolve(line)
    })
  })
  await kafka.stop()
  // Bounded, and saying what the gateway said instead when neither comes.
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      void gateway.kill('SIGKILL')
      reject(new Error(`no "Kafka consumer crashed" or "stopped after" within ${CRASH_BOUND_MS} ms of the broker's stop; the gateway's last lines:\n${gateway.logs.slice(-40).join('\n')}`))
    }, CRASH_BOUND_MS)
  })
  t.teardown(() => clearTimeout(timer))
  const lost = await Promise.race([crashed, bound])
  t.match(lost, LOST, 'the consumer was lost during the outage')
  const exit = await gateway.exited
  t.equal(exit, 'exit code 0', 'the gateway exited 0: nothing it accepted was lost')
  const logs = gateway.logs.join('\n')
  // A consumer kafkajs restarts is still the gateway's: pausing it fails (it has no group), and that
  // is logged. One the gateway stopped is gone, with nothing to pause.
  if (/crashed/.test(lost)) t.match(logs, /Shutdown step failed: Kafka: stop fetching; going on/, 'the step that failed was logged')
  for (const step of ['close the Kafka clients', 'close the inbox', 'stop the hub\'s heartbeats']) t.match(logs, `Shutdown step done: ${step}`, `and the later ones ran: ${step}`)
})
