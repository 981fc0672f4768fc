// The send deadline ("each POST is answered within KAFKA_SEND_TIMEOUT_MS of its arrival") with the
// parts a follow waits for before Kafka: Redis (rate-limit counts, the Idempotency-Key claim) and
// the identity service's keys (JWKS).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { follow, signIn } from '../helpers/clients.js'
import { startDelayProxy } from '../helpers/delay-proxy.js'
import { eventually } from '../helpers/eventually.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'

const SEND_TIMEOUT_MS = 1000
/** On top of the deadline, from the request's arrival to its answer: one request on a quiet loop. */
const ANSWER_MARGIN_MS = 500
const SECRET = 'a-secret-for-the-send-deadline-test-32-chars'

/** Records, for each request the gateway gets, the milliseconds from its arrival to its answer. */
function answerTimes (gateway: Gateway): number[] {
  const times: number[] = []
  gateway.app.server.prependListener('request', (_request: IncomingMessage, response: ServerResponse) => {
    const arrived = performance.now()
    response.once('finish', () => times.push(performance.now() - arrived))
  })
  return times
}

// Regression: the deadline started when the follow reached the Kafka producer,
// so a slow Redis (three round trips first: two rate-limit counts and the key claim) came on top.
t.test('with a slow Redis, a keyed follow is answered within KAFKA_SEND_TIMEOUT_MS of its arrival', async (t) => {
  const redis = await startRedis(t)
  if (redis === undefined) return
  const slow = await startDelayProxy(t, redis.port, 0)
  const gateway = await startGateway(t, {
    env: { REDIS_URL: `redis://127.0.0.1:${slow.port}`, AUTH_SECRET: SECRET, KAFKA_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS), RATE_LIMIT_PER_IP: '600', RATE_LIMIT_PER_USER: '120' }
  })
  const bruno = await signIn(gateway.url, '2')
  const quick = await follow(gateway.url, bruno, '1', { 'idempotency-key': 'before' })
  t.equal(quick.status, 202, 'accepted while Redis answers at once')

  // Each command takes 600 ms: below Redis's own 1 s command timeout, three of them past the deadline.
  slow.delayMs = 600
  const times = answerTimes(gateway)
  const response = await follow(gateway.url, bruno, '1', { 'idempotency-key': 'slow' })
  const body = await response.json() as { code?: string }
  t.equal(times.length, 1)
  t.ok(times[0]! <= SEND_TIMEOUT_MS + ANSWER_MARGIN_MS, `answered within ${SEND_TIMEOUT_MS} + ${ANSWER_MARGIN_MS} ms of its arrival (${Math.round(times[0]!)} ms)`)
  t.ok(response.status === 202 || (response.status === 503 && body.code === 'REDIS_UNAVAILABLE'), `with 202, or 503 REDIS_UNAVAILABLE (${response.status} ${body.code ?? ''})`)

  slow.delayMs = 0
  const retry = await follow(gateway.url, bruno, '1', { 'idempotency-key': 'slow' })
  t.equal(retry.status, 202, 'its retry with the same key is accepted once Redis is quick again')
})

// Regression: jose waits up to 5 s for the key set, and that came on top of
// the send timeout; a JWKS that failed answered 401, which makes clients drop a good token.
t.test('with a slow JWKS endpoint, a follow is answered within KAFKA_SEND_TIMEOUT_MS of its arrival: 503 AUTH_UNAVAILABLE, then 202 once the keys are in', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const keys = { keys: [{ ...await exportJWK(publicKey), kid: 'k1', alg: 'RS256', use: 'sig' }] }
  let jwksDelayMs = 2500
  const jwks = createServer((_request, response) => {
    setTimeout(() => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys)), jwksDelayMs)
  })
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { jwks.closeAllConnections(); jwks.close(() => resolve()) }))
  const gateway = await startGateway(t, {
    env: {
      AUTH_MODE: 'jwt',
      AUTH_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`,
      AUTH_AUDIENCE: 'kafka-notify',
      KAFKA_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS)
    }
  })
  const token = await new SignJWT({ sub: '2', aud: 'kafka-notify', exp: Math.floor(Date.now() / 1000) + 600 }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(privateKey)
  const times = answerTimes(gateway)
  const first = await follow(gateway.url, token, '1')
  t.ok(times[0]! <= SEND_TIMEOUT_MS + ANSWER_MARGIN_MS, `answered within ${SEND_TIMEOUT_MS} + ${ANSWER_MARGIN_MS} ms of its arrival (${Math.round(times[0]!)} ms)`)
  t.equal(first.status, 503)
  t.match(await first.json(), { code: 'AUTH_UNAVAILABLE' }, 'the token may be good: not a 401')
  t.equal(first.headers.get('retry-after'), '1')

  jwksDelayMs = 0
  const retry = await eventually('a follow not answered 503', () => follow(gateway.url, token, '1'), (answer) => answer.status !== 503, { timeoutMs: 10_000, everyMs: 200 })
  t.equal(retry.status, 202, 'accepted once the key set arrived')
})
