import t from 'tap'
import { ApiError } from '../../client/api.js'
import { FollowKeys } from '../../web/src/follow-keys.js'

function keys (): FollowKeys {
  let made = 0
  return new FollowKeys(() => `key-${++made}`)
}

t.test('a follow retried after a 503, a 500, a timeout or no answer keeps its Idempotency-Key', async (t) => {
  for (const error of [
    new ApiError(503, 'KAFKA_UNAVAILABLE', 'Kafka did not acknowledge', 1),
    new ApiError(503, 'SHUTTING_DOWN', 'shutting down', 1),
    new ApiError(500, 'INTERNAL', 'masked'),
    new ApiError(0, 'TIMEOUT', 'no answer in time'),
    new ApiError(0, 'NETWORK', 'no answer'),
    new TypeError('not an API answer')
  ]) {
    const follows = keys()
    const first = follows.keyFor('2')
    follows.failed('2', error)
    t.equal(follows.keyFor('2'), first, `same key after ${error instanceof ApiError ? error.code : error.name}`)
  }
})

t.test('a follow that succeeded or got a 4xx settles its key: the next follow gets a new one', async (t) => {
  const follows = keys()
  const first = follows.keyFor('2')
  follows.succeeded('2')
  const second = follows.keyFor('2')
  t.not(second, first, 'new key after a 202')
  follows.failed('2', new ApiError(429, 'RATE_LIMITED', 'slow down', 30))
  t.not(follows.keyFor('2'), second, 'new key after a 429')
})

t.test('keys are per followee', async (t) => {
  const follows = keys()
  t.not(follows.keyFor('2'), follows.keyFor('3'))
})
