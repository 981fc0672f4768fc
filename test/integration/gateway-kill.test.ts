import t from 'tap'
import { eventually } from '../helpers/eventually.js'
import { checkInbox, checkTabs, FollowStream, startSharedServices, signInAll, ResumingTab, USERS } from '../helpers/feed-checks.js'
import { tempDir, testEnv } from '../helpers/gateway.js'
import { spawnGateway, type SpawnedGateway } from '../helpers/gateway-process.js'
import { groupAssignment, testKafka } from '../helpers/kafka.js'
import { Waiters } from '../helpers/waiters.js'

const PACE_MS = 50
const BEFORE = 40
const AFTER = 40
/** The group's session timeout is 10 s (server/kafka/bus.ts, not configurable): the survivors get the partitions after it. */
const REBALANCE_BOUND_MS = 30_000
const BOUND_MS = 60_000

t.setTimeout(170_000)

// Three gateways as real processes on one PostgreSQL inbox and one Redis fan-out; one is SIGKILLed
// mid-stream. Its partitions move to the others once the group gives up on it, its tabs reconnect
// elsewhere with their last cursor, and its POSTs are retried elsewhere with their Idempotency-Key:
// every 202 reaches every tab once, in seq order, and the inbox holds it once.
t.test('a gateway SIGKILLed mid-stream: its partitions move to the others, its tabs resume elsewhere with since, every 202 is stored and delivered once, in order', async (t) => {
  const shared = await startSharedServices(t)
  if (shared === undefined) return
  const { databaseUrl, env } = shared
  // Each its own client id, so the group's members can be told apart.
  const gateways = await Promise.all([0, 1, 2].map(async (i) => await spawnGateway(t, testEnv(tempDir(t), { ...env, KAFKA_CLIENT_ID: `gateway-${i}` }))))
  const admin = testKafka().admin()
  await admin.connect()
  t.teardown(() => admin.disconnect())

  const tokens = await signInAll(gateways[0]!.url)
  const alive = new Set(gateways.map(({ url }) => url))
  /** A dropped tab goes to the next gateway that is still up. */
  const pick = (from: string): string => {
    const urls = gateways.map(({ url }) => url)
    for (let step = 1; step <= urls.length; step++) {
      const url = urls[(urls.indexOf(from) + step) % urls.length]!
      if (alive.has(url)) return url
    }
    throw new Error('no gateway is up')
  }
  const waiters = new Waiters()
  const tabs: ResumingTab[] = []
  for (const gateway of gateways) {
    for (const userId of USERS) tabs.push(await ResumingTab.open(t, { userId, token: tokens.get(userId)!, url: gateway.url, pick, waiters }))
  }
  // The client does not know which gateway is gone: every third POST still goes to it first.
  const stream = new FollowStream({ targets: gateways.map(({ url }) => url), tokens, paceMs: PACE_MS })
  stream.start()
  await stream.accepting(BEFORE, BOUND_MS)

  // The victim is a gateway that consumes a partition holding records: its work must move.
  const busy = new Set((await admin.fetchTopicOffsets(env.KAFKA_TOPIC!)).filter(({ high }) => Number(high) > 0).map(({ partition }) => partition))
  const before = await assignment()
  const index = [0, 1, 2].find((i) => (before.get(`gateway-${i}`) ?? []).some((partition) => busy.has(partition)))!
  const victim: SpawnedGateway = gateways[index]!
  const moved = before.get(`gateway-${index}`)!
  t.equal(before.size, 3, `three members, the victim (gateway ${index}) consuming partitions ${moved.join(', ')}`)

  const killedAt = Date.now()
  const acceptedAtKill = stream.acceptedCount
  alive.delete(victim.url)
  t.equal(await victim.kill('SIGKILL'), 'signal SIGKILL', `gateway ${index} was SIGKILLed mid-stream`)

  const after = await eventually('the group dropped the victim', assignment,
    (members) => members.size === 2 && !members.has(`gateway-${index}`) && [...members.values()].flat().length >= 6, { timeoutMs: REBALANCE_BOUND_MS, everyMs: 250 })
  const rebalancedIn = Date.now() - killedAt
  t.same([...after.keys()].sort(), [0, 1, 2].filter((i) => i !== index).map((i) => `gateway-${i}`).sort(), `the group dropped the victim ${(rebalancedIn / 1000).toFixed(1)} s after the kill`)
  t.same([...after.values()].flat().sort(), [0, 1, 2, 3, 4, 5], 'and the survivors own all six partitions, the victim\'s included')
  await stream.accepting(AFTER, BOUND_MS)
  await stream.stop()

  await checkTabs(t, stream, tabs, BOUND_MS)
  await checkInbox(t, databaseUrl, stream)
  const resumed = tabs.filter((tab) => tab.reconnects.length > 0)
  t.same(resumed.map((tab) => tab.reconnects[0]!.from), Array(USERS.length).fill(victim.url), 'the victim\'s tabs, and only those, lost their socket')
  t.ok(resumed.every((tab) => tab.reconnects.every(({ to }) => to !== undefined && to !== victim.url)), 'and resumed on a surviving gateway with their last cursor')
  const retried = stream.answers.filter(({ status }) => status === 'network error')
  t.ok(retried.length > 0, `${retried.length} POSTs failed at the network level and were retried on another gateway with their Idempotency-Key`)
  t.comment(`${stream.acceptedCount} follows accepted, ${stream.acceptedCount - acceptedAtKill} after the kill; partitions ${moved.join(', ')} moved in ${(rebalancedIn / 1000).toFixed(1)} s; ` +
    `socket closes of the resumed tabs: ${resumed.map((tab) => tab.reconnects.map(({ code }) => code).join('/')).join(', ')}`)

  async function assignment (): Promise<Map<string, number[]>> {
    return await groupAssignment(admin, env.KAFKA_GROUP_ID!, env.KAFKA_TOPIC!)
  }
})
