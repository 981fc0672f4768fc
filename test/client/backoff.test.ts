import t from 'tap'
import { backoff } from '../../client/backoff.js'

t.test('full jitter: between 0 and base * 2^attempt, never past the cap', async (t) => {
  const random = Math.random
  t.teardown(() => { Math.random = random })
  Math.random = () => 0
  t.equal(backoff(0), 0, 'the lowest draw waits not at all')
  Math.random = () => 0.999999
  t.ok(backoff(0) < 500 && backoff(0) > 499, 'attempt 0: just under base (500 ms)')
  t.ok(backoff(3) < 4_000 && backoff(3) > 3_999, 'attempt 3: just under 500 * 2^3')
  t.ok(backoff(20) < 15_000 && backoff(20) > 14_999, 'attempt 20: just under the cap (15 s)')
  t.ok(backoff(2, 5_000, 60_000) > 19_999 && backoff(2, 5_000, 60_000) < 20_000, 'another base and cap (4029: too many connections)')
  t.ok(backoff(9, 5_000, 60_000) < 60_000, 'and its cap')
})
