import t from 'tap'
import { signIn } from '../helpers/clients.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

t.test('GET /metrics is Prometheus text with the gateway\'s metrics', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const response = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^text\/plain/)
  for (const name of ['notify_follows_total', 'notify_ws_connections', 'notify_notifications_delivered_total', 'notify_delivery_latency_seconds', 'notify_inbox_append_seconds', 'notify_consumer_lag', 'notify_dlq_records_total', 'notify_ws_dropped_total', 'notify_feed_fills_total', 'notify_feed_tail_repairs_total', 'notify_fanout_lost_frames_total', 'notify_redis_link_resets_total', 'process_cpu_user_seconds_total']) {
    t.match(response.body, new RegExp(`^# TYPE ${name} `, 'm'), name)
  }
  t.match(response.body, /^notify_ws_connections 0$/m)
})

t.test('notify_follows_total counts accepted follows and errors by code', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const emma = await signIn(app, '1')
  const follow = (followeeId: string, token = emma) => app.inject({ method: 'POST', url: '/api/follows', headers: { authorization: `Bearer ${token}` }, payload: { followeeId } })
  t.equal((await follow('2')).statusCode, 202)
  t.equal((await follow('3')).statusCode, 202)
  t.equal((await follow('1')).statusCode, 400)
  t.equal((await follow('99')).statusCode, 404)
  t.equal((await follow('2', 'garbage')).statusCode, 401)
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /^notify_follows_total\{outcome="accepted"\} 2$/m)
  t.match(metrics, /^notify_follows_total\{outcome="SELF_FOLLOW"\} 1$/m)
  t.match(metrics, /^notify_follows_total\{outcome="UNKNOWN_USER"\} 1$/m)
  t.match(metrics, /^notify_follows_total\{outcome="UNAUTHORIZED"\} 1$/m)
})

t.test('notify_inbox_append_seconds times each consumed batch\'s inbox write', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const emma = await signIn(app, '1')
  for (const followeeId of ['2', '3']) {
    t.equal((await app.inject({ method: 'POST', url: '/api/follows', headers: { authorization: `Bearer ${emma}` }, payload: { followeeId } })).statusCode, 202)
  }
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /^notify_inbox_append_seconds_count 2$/m, 'one observation per batch (the fake bus hands each record over alone)')
  t.match(metrics, /^notify_inbox_append_seconds_sum \d/m)
})
