import t from 'tap'
import { KafkaUnavailableError } from '../../server/errors.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

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
  t.same(notReady.json(), { status: 'not ready', reasons: ['producer disconnected'] })

  bus.failWith = undefined
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'ready again once Kafka is back')
})
