import t from 'tap'
import type { CloseCode } from '../../server/hub/close-codes.js'
import { within } from '../../server/lifecycle.js'
import { FeedClient } from '../helpers/clients.js'
import { deferred } from '../helpers/deferred.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

/** Far more than a close takes here; without the fix the socket is never closed at all. */
const BOUND_MS = 5000

/** Resolves with the promise's value, or 'timed out' after `ms`: a bound, not a wait. */
function bounded<T> (promise: Promise<T>, ms: number): Promise<T | 'timed out'> {
  return within<T | 'timed out'>(promise, ms, () => 'timed out')
}

// Regression: an upgrade whose token check was still running when SIGTERM came
// completed after the hub's closeAll, was added and never closed; server.close() waited for it and
// the process was killed at the grace period with exit 1.
t.test('an upgrade whose token check outlives the start of close gets 1001, and close does not wait for it', async (t) => {
  const gateway = await startGateway(t, { bus: new FakeBus() })
  const { tokens, hub } = gateway.services
  const { token } = await tokens.sign({ id: '1', name: 'Emma' })

  const verifying = deferred()
  const verified = deferred()
  const verify = tokens.verify.bind(tokens)
  tokens.verify = async (candidate) => {
    verifying.resolve()
    await verified.promise
    return await verify(candidate)
  }
  const hubClosed = deferred()
  const closeAll = hub.closeAll.bind(hub)
  hub.closeAll = (code: CloseCode, reason: string) => {
    closeAll(code, reason)
    hubClosed.resolve()
  }

  const opening = FeedClient.upgrade(t, gateway.url, `/ws?token=${token}`)
  await verifying.promise
  const closing = gateway.close()
  await hubClosed.promise
  verified.resolve()

  const upgraded = await opening
  t.equal(upgraded.opened, true, 'the upgrade that was already past the closing check goes through')
  if (!upgraded.opened) return
  const { feed } = upgraded
  t.same(await bounded(feed.closed, BOUND_MS), { code: 1001, reason: 'server shutting down' }, 'and is closed at once')
  t.same(feed.frames, [], 'without a feed')
  t.equal(await bounded(closing.then(() => 'closed'), BOUND_MS), 'closed', 'app.close() resolves')
  t.equal(hub.connectionCount, 0, 'the hub did not keep it')
})
