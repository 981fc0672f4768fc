import t from 'tap'
import { eventually } from '../helpers/eventually.js'
import { checkInbox, checkTabs, FollowStream, startSharedServices, signInAll, ResumingTab, USERS, waitReady } from '../helpers/feed-checks.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { groupAssignment, testKafka } from '../helpers/kafka.js'
import { Waiters } from '../helpers/waiters.js'

const PACE_MS = 20
const BEFORE = 60
/** Sent at once as the third gateway starts: batches are in flight on both gateways while the group rebalances. */
const BURST = 100
const AFTER = 60
const JOIN_BOUND_MS = 30_000
const BOUND_MS = 60_000

// Two gateways consume a stream of follows; a third starts and joins the group mid-stream, so
// partitions move while batches are in flight on their old owners. Every tab, old and new, gets seq
// 1, 2, 3… with no hole and no repeat, and the inbox holds each once.
t.test('a gateway joining mid-stream: partitions move while batches are in flight, and every tab still gets every 202 once, in seq order', async (t) => {
  const shared = await startSharedServices(t)
  if (shared === undefined) return
  const { databaseUrl, env } = shared
  const start = async (name: string): Promise<Gateway> => await startGateway(t, { env: { ...env, KAFKA_CLIENT_ID: name } })
  const gateways = [await start('gateway-a'), await start('gateway-b')]
  for (const gateway of gateways) await waitReady(gateway.url)
  const admin = testKafka().admin()
  await admin.connect()
  t.teardown(() => admin.disconnect())
  const assignment = async (): Promise<Map<string, number[]>> => await groupAssignment(admin, env.KAFKA_GROUP_ID!, env.KAFKA_TOPIC!)

  const tokens = await signInAll(gateways[0]!.url)
  const waiters = new Waiters()
  const tabs: ResumingTab[] = []
  for (const gateway of gateways) {
    for (const userId of USERS) tabs.push(await ResumingTab.open(t, { userId, token: tokens.get(userId)!, url: gateway.url, waiters }))
  }
  const targets = gateways.map(({ url }) => url)
  const stream = new FollowStream({ targets, tokens, paceMs: PACE_MS })
  stream.start()
  await stream.accepting(BEFORE, BOUND_MS)
  const before = await assignment()
  t.same([...before.keys()].sort(), ['gateway-a', 'gateway-b'], `two members: ${JSON.stringify(Object.fromEntries(before))}`)

  const joiningAt = Date.now()
  const acceptedAtJoin = stream.acceptedCount
  const burst = stream.burst(BURST)
  const joiner = await start('gateway-c')
  const after = await eventually('gateway-c consumes', assignment, (members) => (members.get('gateway-c') ?? []).length > 0, { timeoutMs: JOIN_BOUND_MS, everyMs: 100 })
  const joinedIn = Date.now() - joiningAt
  await burst
  t.same([...after.values()].map((partitions) => partitions.length), [2, 2, 2], `three members, two partitions each, ${(joinedIn / 1000).toFixed(1)} s after the start: ${JSON.stringify(Object.fromEntries(after))}`)
  t.ok(stream.acceptedCount >= acceptedAtJoin + BURST, `${stream.acceptedCount - acceptedAtJoin} follows were accepted while it started and the partitions moved`)
  await waitReady(joiner.url)
  // Its tabs start from the beginning (since=0): catch-up, then live, on the new member.
  for (const userId of USERS) tabs.push(await ResumingTab.open(t, { userId, token: tokens.get(userId)!, url: joiner.url, waiters }))
  targets.push(joiner.url)
  await stream.accepting(AFTER, BOUND_MS)
  await stream.stop()

  await checkTabs(t, stream, tabs, BOUND_MS)
  await checkInbox(t, databaseUrl, stream)
  t.comment(`${stream.acceptedCount} follows accepted, ${stream.acceptedCount - acceptedAtJoin} from the join on; partitions moved in ${(joinedIn / 1000).toFixed(1)} s; ${tabs.length} tabs`)
})
