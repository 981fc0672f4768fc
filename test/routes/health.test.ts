import t from 'tap'
import { KafkaUnavailableError } from '../../server/kafka/errors.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'
import { startPostgres } from '../helpers/postgres.js'

t.test('GET /healthz answers 200 while the process is up, even with Kafka down', async (t) => {
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false })
  const up = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(up.statusCode, 200)
  t.same(up.json(), { status: 'ok' })
  bus.failWith = new KafkaUnavailableError('down')
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
})

t.test('GET /readyz follows the bus\'s health', async (t) => {
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false })
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })

  bus.failWith = new KafkaUnavailableError('producer disconnected')
  const notReady = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(notReady.statusCode, 503)
  t.same(notReady.json(), { status: 'not ready', reasons: ['Kafka unreachable'] })

  bus.failWith = undefined
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'ready again once Kafka is back')
})

// Regression: onReady waited for the group join, and Fastify gives onReady 10 s; after a
// SIGKILL the dead member holds the group for its session timeout, so the gateway failed to start.
t.test('the gateway listens while the consumer group join is slow; /readyz says why until the join', async (t) => {
  const bus = new FakeBus()
  bus.manualJoin = true
  const gateway = await startGateway(t, { bus })
  t.ok(gateway.url, 'listening although the group is not joined')
  const joining = await fetch(`${gateway.url}/readyz`)
  t.equal(joining.status, 503)
  t.same(await joining.json(), { status: 'not ready', reasons: ['consumer group not joined yet'] })
  t.equal((await fetch(`${gateway.url}/healthz`)).status, 200, 'alive meanwhile')

  bus.join()
  const joined = await fetch(`${gateway.url}/readyz`)
  t.equal(joined.status, 200, 'ready once joined')
})

// Regression: the unauthenticated /readyz answered with the drivers' messages
// (\`inbox (PostgreSQL) unreachable: connect ECONNREFUSED 127.0.0.1:…\`, kafkajs's broker addresses).
t.test('/readyz answers fixed reasons naming the dependency and its state; what the driver said goes to the log', async (t) => {
  const postgres = await startPostgres(t)
  if (postgres === undefined) return
  const lines: string[] = []
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false, logLines: lines, env: { DATABASE_URL: postgres.url } })
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
  await postgres.kill()
  try {
    bus.failWith = new KafkaUnavailableError('Connection error: connect ECONNREFUSED 10.1.2.3:9092')
    const answer = await app.inject({ method: 'GET', url: '/readyz' })
    t.equal(answer.statusCode, 503)
    t.same(answer.json(), { status: 'not ready', reasons: ['Kafka unreachable', 'inbox (PostgreSQL) unreachable'] })
    t.notMatch(answer.body, new RegExp(`ECONNREFUSED|127\\.0\\.0\\.1|10\\.1\\.2\\.3|${postgres.port}`), 'no address, port or driver message')
    const logged = lines.map((line) => JSON.parse(line) as { msg: string, reasons?: Array<{ reason: string, detail?: string }> }).find((line) => line.msg === 'Not ready')
    t.match(logged?.reasons, [{ reason: 'Kafka unreachable', detail: /10\.1\.2\.3:9092/ }, { reason: 'inbox (PostgreSQL) unreachable', detail: /ECONNREFUSED|connect|terminat/ }], 'the log has the details')
  } finally {
    await postgres.start()
  }
})
