import t from 'tap'
import { FeedClient, follow, readiness, signIn } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { startGateway } from '../helpers/gateway.js'

const RECOVERY_BOUND_MS = 60_000
const POLL = { timeoutMs: RECOVERY_BOUND_MS }

// Regression: a non-retriable error in the delivery path (kafkajs's CRASH with
// restart: false) stopped the consumer for good, while POSTs still got 202. Delivery now runs
// outside eachBatch (server/kafka/batch-pipeline.ts), and any error there restarts the consumer.
t.test('an error in the delivery path: the gateway restarts the consumer, /readyz says why meanwhile, nothing is lost', async (t) => {
  const gateway = await startGateway(t)
  const [emma, bruno] = await Promise.all([signIn(gateway.url, '1'), signIn(gateway.url, '2')])
  const tab = await FeedClient.connect(gateway.url, emma)
  t.teardown(() => tab.close())
  t.equal((await tab.next()).type, 'ready')
  t.same(await eventually('joined', () => readiness(gateway.url), (ready) => ready.status === 200, POLL), { status: 200, reasons: [] }, 'joined')

  // The first batch the inbox is given throws a TypeError, which kafkajs never retries.
  const { inbox } = gateway.services
  const append = inbox.append.bind(inbox)
  let failed: () => void = () => {}
  const threw = new Promise<void>((resolve) => { failed = resolve })
  let injected = false
  inbox.append = async (...records: Parameters<typeof append>) => {
    if (!injected) {
      injected = true
      failed()
      throw new TypeError('injected: a bug in the delivery path')
    }
    return await append(...records)
  }
  t.teardown(() => { inbox.append = append })

  const response = await follow(gateway.url, bruno, '1')
  t.equal(response.status, 202, 'the follow is accepted (Kafka has it)')
  const { notification } = await response.json() as { notification: { id: string } }
  await threw

  const down = await eventually('/readyz names the failure', () => readiness(gateway.url), (ready) => ready.reasons.some((reason) => /delivery path/.test(reason)), POLL)
  t.equal(down.status, 503, '/readyz is 503 while the consumer is down')
  t.ok(down.reasons.includes('consumer stopped after an error in the delivery path; restarting it'), `and says why: ${down.reasons.join('; ')}`)
  t.notMatch(down.reasons.join('; '), /injected/, 'in its own words: the error itself is in the log')

  let frame = await tab.next(RECOVERY_BOUND_MS)
  while (frame.type !== 'notification') frame = await tab.next(RECOVERY_BOUND_MS)
  t.equal(frame.notification.id, notification.id, 'the record that failed was consumed again and delivered')
  t.same(await eventually('ready again', () => readiness(gateway.url), (ready) => ready.status === 200, POLL), { status: 200, reasons: [] }, 'ready again once the new consumer joined')

  const metrics = await (await fetch(`${gateway.url}/metrics`)).text()
  t.match(metrics, /^notify_consumer_crashes_total\{restarted_by="gateway"\} 1$/m, 'the crash is counted')
  t.match(metrics, /^notify_consumer_restarts_total 1$/m, 'and the restart')

  const again = await follow(gateway.url, bruno, '1')
  t.equal(again.status, 202)
  const { notification: next } = await again.json() as { notification: { id: string } }
  frame = await tab.next(RECOVERY_BOUND_MS)
  while (frame.type !== 'notification') frame = await tab.next(RECOVERY_BOUND_MS)
  t.equal(frame.notification.id, next.id, 'delivery goes on, and the first one was not pushed twice')
})
