import t from 'tap'
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
  gateway.child.kill('SIGTERM')
  const exit = await gateway.exited
  stop.requested = true
  await Promise.all(senders)
  t.equal(exit, 0, 'the gateway exited cleanly within its grace period')
  const codes = new Set((await closes).map((close) => close.code))
  t.same([...codes], [1001], `all ${CLIENTS} sockets were closed with going-away (1001)`)
  const unexpected = [...outcomes.keys()].filter((outcome) => !['202', '503', 'connection closed'].includes(outcome))
  t.same(unexpected, [], `in-flight follows finished or failed cleanly (${JSON.stringify(Object.fromEntries(outcomes))})`)
  t.ok(gateway.logs.some((line) => line.includes('Shutting down')), 'it logged the shutdown')

  const again = await spawnGateway(t, env)
  const tab = await FeedClient.connect(again.url, emma, '0')
  t.teardown(() => tab.close())
  const missing = new Set(accepted)
  while (missing.size > 0) {
    const frame = await tab.next(60_000)
    if (frame.type === 'notification') missing.delete((frame.notification as { id: string }).id)
  }
  t.equal(missing.size, 0, `after a restart, all ${accepted.length} accepted follows are there`)
})
