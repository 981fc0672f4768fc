import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { text } from 'node:stream/consumers'
import t from 'tap'
import { startLocalKafka } from '../../local/kafka/launcher.js'
import { FeedClient, signIn } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { startGateway, tempDir, type Gateway } from '../helpers/gateway.js'
import { recordCount } from '../helpers/kafka.js'
import { freeze } from '../helpers/processes.js'

// These tests freeze the broker (SIGSTOP), so they run their own instead of the shared one.
const SEND_TIMEOUT_MS = 5000
/**
 * How late after its deadline an answer may leave is bounded by the gateway's event loop: the timer
 * that expires a request fires late by at most the longest turn of the loop (its stall, measured
 * during the burst), and the requests it expires are answered in one more turn, at most as long.
 * So the bound is the send timeout, plus twice the longest stall, plus this for the rest (the
 * answer's last bytes leaving). A queued follow must not wait two timeouts, and its deadline runs
 * from its arrival, not from when it reached the producer (that is tested exactly, with a slow
 * Redis, in send-deadline.test.ts).
 */
const ANSWER_MARGIN_MS = 250
const FOLLOWS = 2000
/** Followers of user 1; each holds FOLLOWS / FOLLOWERS keys, well inside its idempotency share. */
const FOLLOWERS = 20
const RECOVERY_BOUND_MS = 60_000
/** The most produce requests the gateway has on the broker at once (MAX_IN_FLIGHT_SENDS). */
const MAX_IN_FLIGHT = 2

t.test('a frozen broker', async (t) => {
  const kafka = await startLocalKafka({ dataDir: tempDir(t) })
  let frozen = false
  const freezeBroker = async (): Promise<void> => {
    frozen = true
    await freeze(kafka.pid)
  }
  const thaw = (): void => {
    if (frozen) process.kill(kafka.pid, 'SIGCONT')
    frozen = false
  }
  // Whatever fails, the broker is thawed before anything else is torn down, then stopped.
  t.teardown(async () => {
    thaw()
    await kafka.stop()
  })
  const brokers = kafka.brokers.join(',')

  // Regression: the send timer started when a batch left the batcher, so queued POSTs
  // waited several timeout windows, the queue grew without bound, and abandoned sends freed
  // their slots while kafkajs kept retrying them.
  t.test(`${FOLLOWS} concurrent follows are all answered within KAFKA_SEND_TIMEOUT_MS, and each accepted one is delivered once`, async (t) => {
    const usersFile = join(tempDir(t), 'users.json')
    const followerIds = Array.from({ length: FOLLOWERS }, (_, i) => String(i + 2))
    writeFileSync(usersFile, JSON.stringify([{ id: '1', name: 'Emma' }, ...followerIds.map((id) => ({ id, name: `Follower ${id}` }))]))
    const gateway = await startGateway(t, { env: { KAFKA_BROKERS: brokers, KAFKA_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS), USERS_FILE: usersFile } })
    const emma = await signIn(gateway.url, '1')
    const followers = await Promise.all(followerIds.map((id) => signIn(gateway.url, id)))
    const tab = await FeedClient.connect(gateway.url, emma)
    t.teardown(() => tab.close())
    t.equal((await tab.next()).type, 'ready')

    // The follows go out from a process of their own: sent from this one, their 2,000 requests and
    // answers took turns on the gateway's event loop and were counted against the gateway.
    const followsWithKeys = async (keys: string[]): Promise<Array<{ key: string, status: number, id?: string, code?: string, ms: number }>> => {
      const burst = spawn(process.execPath, ['--import', 'tsx', BURST], { stdio: ['pipe', 'pipe', 'inherit'] })
      // Key `frozen-<i>` (and its retries) belongs to follower i % FOLLOWERS: keys are per follower.
      const follows = keys.map((key) => [key, Number(key.slice(key.lastIndexOf('-') + 1)) % FOLLOWERS])
      burst.stdin.end(JSON.stringify({ url: gateway.url, tokens: followers, followeeId: '1', follows, timeoutMs: SEND_TIMEOUT_MS + 30_000 }))
      const [answers, [code]] = await Promise.all([text(burst.stdout), once(burst, 'exit') as Promise<[number | null]>])
      if (code !== 0) throw new Error(`the follow burst exited with ${code}`)
      return JSON.parse(answers) as Array<{ key: string, status: number, id?: string, code?: string, ms: number }>
    }
    const keys = Array.from({ length: FOLLOWS }, (_, i) => `frozen-${i}`)
    // Measured where the promise is made: from the request's arrival at the gateway to its answer.
    const served: number[] = []
    const onRequest = (_request: IncomingMessage, response: ServerResponse): void => {
      const arrived = performance.now()
      response.once('finish', () => served.push(performance.now() - arrived))
    }
    gateway.app.server.prependListener('request', onRequest)
    const stalls = monitorEventLoopDelay({ resolution: 10 })

    await freezeBroker()
    let answers: Awaited<ReturnType<typeof followsWithKeys>>
    let inFlight: number
    try {
      stalls.enable()
      answers = await followsWithKeys(keys)
      stalls.disable()
      gateway.app.server.off('request', onRequest)
      inFlight = await metric(gateway, 'notify_produce_in_flight')
    } finally {
      thaw()
    }
    t.equal(served.length, FOLLOWS)
    const slowest = Math.max(...served)
    const stall = stalls.max / 1e6
    const seenByClient = answers.map((answer) => answer.ms).sort((a, b) => a - b)
    t.ok(slowest <= SEND_TIMEOUT_MS + 2 * stall + ANSWER_MARGIN_MS,
      `every follow was answered within ${SEND_TIMEOUT_MS} ms of its arrival, plus twice the longest stall of the loop (${Math.round(stall)} ms) and ${ANSWER_MARGIN_MS} ms ` +
      `(slowest ${Math.round(slowest)} ms; as the client saw it: median ${Math.round(seenByClient[FOLLOWS >> 1]!)}, slowest ${Math.round(seenByClient[FOLLOWS - 1]!)} ms)`)
    const unexpected = answers.filter((answer) => answer.status !== 202 && !(answer.status === 503 && answer.code === 'KAFKA_UNAVAILABLE'))
    t.same(unexpected, [], 'each with 202 or 503 KAFKA_UNAVAILABLE')
    t.ok(answers.some((answer) => answer.status === 503), 'the frozen broker took nothing in time')
    t.ok(inFlight <= MAX_IN_FLIGHT, `no more than ${MAX_IN_FLIGHT} produce requests were on the broker (${inFlight})`)

    // A careful client retries each 503 with its key until accepted; the retry publishes the same id.
    const accepted = new Map<string, string>()
    for (const answer of answers) if (answer.status === 202) accepted.set(answer.key, answer.id!)
    const deadline = Date.now() + RECOVERY_BOUND_MS
    let waiting = keys.filter((key) => !accepted.has(key))
    while (waiting.length > 0 && Date.now() < deadline) {
      const retries = await followsWithKeys(waiting)
      for (const retry of retries) if (retry.status === 202) accepted.set(retry.key, retry.id!)
      waiting = keys.filter((key) => !accepted.has(key))
    }
    t.equal(waiting.length, 0, 'after the thaw every follow was accepted')

    // One more follow, after everything: one user's records share a partition, so a duplicate
    // (an abandoned send that the broker wrote anyway) would reach the tab before it.
    const [marker] = await followsWithKeys(['marker-0'])
    t.equal(marker!.status, 202)
    const seen = new Map<string, number>()
    for (;;) {
      const frame = await tab.next(RECOVERY_BOUND_MS)
      if (frame.type !== 'notification') continue
      const id = frame.notification.id
      if (id === marker!.id) break
      seen.set(id, (seen.get(id) ?? 0) + 1)
    }
    const ids = new Set(accepted.values())
    t.equal(ids.size, FOLLOWS, 'one notification id per key')
    t.same([...ids].filter((id) => seen.get(id) !== 1), [], 'every accepted follow reached the open tab exactly once')
    t.same([...seen.keys()].filter((id) => !ids.has(id)), [], 'and nothing else did')
  })

  // Regression: ~800 messages of 1,000 chars to one user coalesced into one request over
  // the broker's message.max.bytes (1 MiB), which failed every caller in it.
  t.test('1,000 queued 1,000-character messages are sent in batches under message.max.bytes: every one is written', async (t) => {
    // Long enough that all 1,000 requests reach the queue while the broker is frozen, even on a
    // loaded machine (the wait below is half of it), before the first of them times out.
    const sendTimeoutMs = 40_000
    const gateway = await startGateway(t, { env: { KAFKA_BROKERS: brokers, KAFKA_SEND_TIMEOUT_MS: String(sendTimeoutMs), COMPAT_TUTORIAL: '1' } })
    const message = 'x'.repeat(1000)
    await freezeBroker()
    let statuses: number[]
    try {
      const sends = Array.from({ length: 1000 }, (_, i) => fetch(`${gateway.url}/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ fromID: '2', toID: '1', message: `${i} ${message}`.slice(0, 1000) }).toString(),
        signal: AbortSignal.timeout(sendTimeoutMs + 30_000)
      }).then((response) => response.status))
      // All but the first few (in flight, frozen) wait in the queue: they will leave together.
      const queued = await eventually('the sends queued', () => metric(gateway, 'notify_produce_queued'), (count) => count >= 1000 - MAX_IN_FLIGHT, { timeoutMs: sendTimeoutMs / 2, everyMs: 0 })
      t.equal(queued, 1000 - MAX_IN_FLIGHT, 'everything else queued while the broker was frozen')
      thaw()
      statuses = await Promise.all(sends)
    } finally {
      thaw()
    }
    const counts = Object.fromEntries([...new Set(statuses)].map((status) => [status, statuses.filter((s) => s === status).length]))
    t.same(counts, { 200: 1000 }, 'every /send was accepted')
    t.equal(await recordCount(gateway.config.kafka.topic, brokers), 1000, 'and written once')
  })
})

const BURST = new URL('../fixtures/follow-burst.ts', import.meta.url).pathname

/** One unlabelled sample from the gateway's /metrics. */
async function metric (gateway: Gateway, name: string): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text()
  const line = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  if (line === null) throw new Error(`no ${name} in /metrics`)
  return Number(line[1])
}
