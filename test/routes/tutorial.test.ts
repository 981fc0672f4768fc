import t from 'tap'
import { KafkaUnavailableError } from '../../server/kafka/errors.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

t.test('the Go tutorial\'s routes, with COMPAT_TUTORIAL=1', async (t) => {
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false, env: { COMPAT_TUTORIAL: '1' } })
  const send = (form: string) => app.inject({ method: 'POST', url: '/send', headers: FORM, payload: form })

  t.test('POST /send with a form answers the tutorial\'s message and publishes the notification', async (t) => {
    const response = await send('fromID=2&toID=1&message=Bruno+started+following+you.')
    t.equal(response.statusCode, 200)
    t.same(response.json(), { message: 'Notification sent successfully!' })
    t.equal(bus.published.length, 1)
    t.match(bus.published[0], { type: 'message', userId: '1', actor: { id: '2', name: 'Bruno' }, message: 'Bruno started following you.' })
  })

  t.test('POST /send for an unknown user answers 404 User not found', async (t) => {
    const count = bus.published.length
    for (const form of ['fromID=2&toID=99&message=hi', 'fromID=99&toID=1&message=hi']) {
      const response = await send(form)
      t.equal(response.statusCode, 404, form)
      t.same(response.json(), { message: 'User not found' }, form)
    }
    t.equal(bus.published.length, count, 'nothing was published')
  })

  t.test('POST /send without a field answers 400 with a message', async (t) => {
    const response = await send('fromID=2&toID=1')
    t.equal(response.statusCode, 400)
    t.match(response.json(), { message: /message/ })
  })

  t.test('POST /send while Kafka is down answers 503', async (t) => {
    bus.failWith = new KafkaUnavailableError('down')
    t.teardown(() => { bus.failWith = undefined })
    const response = await send('fromID=2&toID=1&message=hi')
    t.equal(response.statusCode, 503)
    t.equal(response.headers['retry-after'], '1')
  })

  t.test('GET /notifications/:userID lists what the user got, oldest first, with numeric ids', async (t) => {
    await send('fromID=3&toID=1&message=Rick+started+following+you.')
    const response = await app.inject({ method: 'GET', url: '/notifications/1' })
    t.equal(response.statusCode, 200)
    t.same(response.json(), {
      notifications: [
        { from: { id: 2, name: 'Bruno' }, to: { id: 1, name: 'Emma' }, message: 'Bruno started following you.' },
        { from: { id: 3, name: 'Rick' }, to: { id: 1, name: 'Emma' }, message: 'Rick started following you.' }
      ]
    })
  })

  t.test('GET /notifications/:userID for a user without notifications', async (t) => {
    for (const userId of ['4', '99']) {
      const response = await app.inject({ method: 'GET', url: `/notifications/${userId}` })
      t.equal(response.statusCode, 200, userId)
      t.same(response.json(), { message: 'No notifications found for user', notifications: [] }, userId)
    }
  })

  t.test('follows show up on the tutorial route too', async (t) => {
    const { token } = (await app.inject({ method: 'POST', url: '/api/sessions', payload: { userId: '1' } })).json()
    await app.inject({ method: 'POST', url: '/api/follows', headers: { authorization: `Bearer ${token}` }, payload: { followeeId: '4' } })
    const response = await app.inject({ method: 'GET', url: '/notifications/4' })
    t.same(response.json(), { notifications: [{ from: { id: 1, name: 'Emma' }, to: { id: 4, name: 'Lena' }, message: 'Emma started following you.' }] })
  })

  t.test('the form parser is the tutorial\'s alone: /api/follows still refuses forms', async (t) => {
    const { token } = (await app.inject({ method: 'POST', url: '/api/sessions', payload: { userId: '1' } })).json()
    const response = await app.inject({ method: 'POST', url: '/api/follows', headers: { ...FORM, authorization: `Bearer ${token}` }, payload: 'followeeId=2' })
    t.equal(response.statusCode, 415)
  })
})

t.test('without COMPAT_TUTORIAL the tutorial routes do not exist', async (t) => {
  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false })
  const send = await app.inject({ method: 'POST', url: '/send', headers: FORM, payload: 'fromID=2&toID=1&message=hi' })
  t.equal(send.statusCode, 404)
  t.match(send.json(), { code: 'NOT_FOUND' })
  const list = await app.inject({ method: 'GET', url: '/notifications/1' })
  t.equal(list.statusCode, 404)
  t.equal(bus.published.length, 0)
})
