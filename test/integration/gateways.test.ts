import t from 'tap'
import { checkInbox, checkTabs, FollowStream, startSharedServices, signInAll, ResumingTab, waitReady } from '../helpers/feed-checks.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { Waiters } from '../helpers/waiters.js'

const FOLLOWS = 60
const BOUND_MS = 60_000

// Three gateways in one consumer group, one PostgreSQL inbox, one Redis fan-out. Whichever gateway
// consumes a record, every open tab of its recipient, on any gateway, gets it exactly once and in
// seq order.
t.test('three gateways, tabs spread over them, follows POSTed round-robin: every 202 reaches every open tab of its recipient once, in seq order', async (t) => {
  const shared = await startSharedServices(t)
  if (shared === undefined) return
  const { databaseUrl, env } = shared
  const gateways: Gateway[] = []
  for (let i = 0; i < 3; i++) gateways.push(await startGateway(t, { env }))
  const [a, b, c] = gateways as [Gateway, Gateway, Gateway]
  for (const gateway of gateways) await waitReady(gateway.url)

  const tokens = await signInAll(a.url)
  const waiters = new Waiters()
  // Emma and Rick have tabs on two gateways each.
  const placement: Array<[string, Gateway]> = [['1', a], ['1', b], ['2', b], ['3', c], ['3', a], ['4', c]]
  const tabs = await Promise.all(placement.map(async ([userId, gateway]) => await ResumingTab.open(t, { userId, token: tokens.get(userId)!, url: gateway.url, waiters })))

  const stream = new FollowStream({ targets: gateways.map(({ url }) => url), tokens, paceMs: 0 })
  stream.start()
  await stream.accepting(FOLLOWS, BOUND_MS)
  await stream.stop()
  t.same(stream.answers.filter(({ status }) => status !== 202), [], `every one of the ${stream.acceptedCount} POSTs, round-robin over the three, got 202 at once`)

  await checkTabs(t, stream, tabs, BOUND_MS)
  await checkInbox(t, databaseUrl, stream)
  const history = await (await fetch(`${c.url}/api/notifications?limit=100`, { headers: { authorization: `Bearer ${tokens.get('1')!}` } })).json() as { items: Array<{ id: string }> }
  t.same(new Set(history.items.map(({ id }) => id)), new Set(stream.accepted.get('1')), 'any gateway reads the one shared history')
})
