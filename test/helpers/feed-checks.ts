// What the scale-out tests share: tabs that record their feed (and reconnect with their last
// cursor when their socket drops), a paced stream of follows POSTed round-robin over gateways
// (retried elsewhere with the same Idempotency-Key when a gateway is gone), and the checks that
// every accepted follow reached every tab of its recipient and the inbox once, in seq order.
import { setTimeout as delay } from 'node:timers/promises'
import { Pool } from 'pg'
import type { Test } from 'tap'
import { untilReady } from '../../local/gateway-process.js'
import { FeedClient, follow, signIn, type Frame } from './clients.js'
import { uniqueName } from './gateway.js'
import { startPostgres, type TestPostgres } from './postgres.js'
import { startRedis, type TestRedis } from './redis.js'
import { Waiters } from './waiters.js'

/** The default directory's users: every one of them gets follows and has tabs. */
export const USERS = ['1', '2', '3', '4'] as const

const READY_BOUND_MS = 60_000
const RECONNECT_PAUSE_MS = 200
/** A tab that cannot open a socket on any gateway for this long fails the test. */
const RECONNECT_BOUND_MS = 60_000

/** What gateways that are one system share: one topic, one group, one inbox, one fan-out. */
export interface SharedServices {
  postgres: TestPostgres
  redis: TestRedis
  databaseUrl: string
  /** Their environment: the topic, group, DATABASE_URL, REDIS_URL and AUTH_SECRET. */
  env: Record<string, string>
}

/**
 * Starts a PostgreSQL and a Redis for the test `t`, with a database and a topic of its own;
 * undefined when either is not installed (the helpers said so, and fail under CI).
 */
export async function startSharedServices (t: Test): Promise<SharedServices | undefined> {
  const postgres = await startPostgres(t)
  const redis = await startRedis(t)
  if (postgres === undefined || redis === undefined) return undefined
  const databaseUrl = await postgres.createDatabase()
  const topic = uniqueName('notifications')
  const env = {
    KAFKA_TOPIC: topic,
    KAFKA_DLQ_TOPIC: `${topic}.dlq`,
    KAFKA_GROUP_ID: uniqueName('group'),
    KAFKA_PARTITIONS: '6',
    DATABASE_URL: databaseUrl,
    REDIS_URL: redis.url,
    AUTH_SECRET: 'scale-out-test-secret-of-thirty-two-chars'
  }
  return { postgres, redis, databaseUrl, env }
}

/** Polls /readyz (each poll a real request) until it answers 200, within a bound. */
export async function waitReady (url: string, boundMs = READY_BOUND_MS): Promise<void> {
  await untilReady(url, boundMs)
}

export async function signInAll (url: string): Promise<Map<string, string>> {
  return new Map(await Promise.all(USERS.map(async (id) => [id, await signIn(url, id)] as const)))
}

/** A notification a tab got, and when (ms since the epoch). */
export interface Received { id: string, seq: number, at: number }

/**
 * One browser tab of a user, as a client: records the notification frames it gets. When its
 * socket drops (its gateway died, or asked it to come back later), it opens a new one on the
 * gateway `pick` names, with `since` = the last cursor it saw, as a client that keeps its cursor
 * does.
 */
export class ResumingTab {
  readonly name: string
  readonly userId: string
  readonly received: Received[] = []
  /** Every socket that ended under the tab: its close code, its gateway, and the one it reconnected to. */
  readonly reconnects: Array<{ code: number, from: string, to?: string }> = []
  /** `synced` frames with `reset: true`: a resume that could not be caught up (never expected here). */
  resets = 0
  readonly #token: string
  readonly #pick: (from: string) => string
  readonly #waiters: Waiters
  #url: string
  #cursor = '0'
  #feed: FeedClient | undefined
  #closed = false
  #reconnecting: Promise<void> | undefined
  /** Why the last reconnect gave up, if it did. */
  #lost: Error | undefined

  private constructor (name: string, userId: string, token: string, url: string, pick: (from: string) => string, waiters: Waiters) {
    this.name = name
    this.userId = userId
    this.#token = token
    this.#url = url
    this.#pick = pick
    this.#waiters = waiters
  }

  /** Opens a tab from the beginning of the feed (`since=0`); resolves once it got `ready`. */
  static async open (t: Test, options: { userId: string, token: string, url: string, pick?: (from: string) => string, waiters: Waiters }): Promise<ResumingTab> {
    const tab = new ResumingTab(`user ${options.userId} on ${options.url}`, options.userId, options.token, options.url, options.pick ?? ((from) => from), options.waiters)
    t.teardown(() => tab.close())
    await tab.#connect()
    return tab
  }

  get url (): string {
    return this.#url
  }

  /** Resolves once the tab got `id`, within `timeoutMs`. */
  async reached (id: string, timeoutMs: number): Promise<void> {
    await this.#waiters.until(() => `${this.name} did not get ${id} (has ${this.received.length} notifications)`,
      () => this.#lost !== undefined || this.received.some((received) => received.id === id), timeoutMs)
    if (this.#lost !== undefined) throw this.#lost
  }

  close (): void {
    this.#closed = true
    this.#feed?.close()
  }

  /** Opens a socket; resolves on `ready`. Rejects when it is refused or closes before (whoever called tries again). */
  async #connect (): Promise<void> {
    const feed = await FeedClient.connect(this.#url, this.#token, { since: this.#cursor, onFrame: (frame) => this.#receive(frame) })
    this.#feed = feed
    await feed.ready
    const from = this.#url
    void feed.closed.then(({ code }) => {
      if (this.#closed) return
      this.reconnects.push({ code, from })
      this.#reconnecting ??= this.#reconnect().finally(() => { this.#reconnecting = undefined })
    })
  }

  #receive (frame: Frame): void {
    if (frame.type === 'synced' && frame.reset === true) this.resets++
    if (frame.type !== 'notification') return
    this.received.push({ id: frame.notification.id, seq: frame.seq, at: Date.now() })
    this.#cursor = frame.cursor
    this.#waiters.wake()
  }

  async #reconnect (): Promise<void> {
    const deadline = Date.now() + RECONNECT_BOUND_MS
    while (!this.#closed) {
      this.#url = this.#pick(this.#url)
      try {
        await this.#connect()
        this.reconnects.at(-1)!.to = this.#url
        return
      } catch (error) {
        if (Date.now() > deadline) {
          this.#lost = new Error(`${this.name} could not reconnect within ${RECONNECT_BOUND_MS} ms: ${(error as Error).message}`)
          this.#waiters.wake()
          return
        }
        await delay(RECONNECT_PAUSE_MS)
      }
    }
  }
}

export interface FollowStreamOptions {
  /** Gateways to POST to, round-robin; may change while the stream runs (a gateway added). */
  targets: string[]
  tokens: Map<string, string>
  /** The pause between two follows. */
  paceMs: number
}

/** A stream nobody stops ends here, failing the test: far more than any test here sends. */
const MAX_FOLLOWS = 2000

/** How a POST ended (and when, in ms since the epoch; a 202 with its notification's id), kept to judge the stream by. */
export interface Answer { key: string, url: string, status: number | 'network error', code?: string, id?: string, at: number }

const ANSWER_BOUND_MS = 15_000
const KEY_BOUND_MS = 60_000

/**
 * Follows POSTed one at a time, round-robin over the targets, follower and followee going round
 * the users. A POST that fails at the network level (its gateway is gone) or answers 503/429 is
 * sent again, to the next gateway, with the same Idempotency-Key, until it gets its 202.
 */
export class FollowStream {
  /** The ids of the 202s, per recipient, in the order accepted. */
  readonly accepted = new Map<string, string[]>(USERS.map((id) => [id, []]))
  readonly answers: Answer[] = []
  readonly #options: FollowStreamOptions
  readonly #waiters = new Waiters()
  #next = 0
  #bursts = 0
  #failure: Error | undefined
  #running: Promise<void> | undefined
  #stopping = false

  constructor (options: FollowStreamOptions) {
    this.#options = options
  }

  get acceptedCount (): number {
    let count = 0
    for (const ids of this.accepted.values()) count += ids.length
    return count
  }

  /** Every accepted id, in no particular order. */
  get acceptedIds (): string[] {
    return [...this.accepted.values()].flat()
  }

  /** Starts sending in the background, until `stop`. */
  start (): void {
    this.#running ??= this.#run()
    this.#running.catch(() => {}) // reported by accepting() and stop()
  }

  /** Ends the stream after the follow in hand; rejects if the stream failed. */
  async stop (): Promise<void> {
    this.#stopping = true
    await this.#running
  }

  async #run (): Promise<void> {
    try {
      for (let i = 0; !this.#stopping; i++) {
        if (i === MAX_FOLLOWS) throw new Error(`the stream reached ${MAX_FOLLOWS} follows without being stopped`)
        await this.send(`stream-${i}`, USERS[(i + 1) % USERS.length]!, USERS[i % USERS.length]!)
        await delay(this.#options.paceMs)
      }
    } catch (error) {
      this.#failure = error as Error
      this.#waiters.wake()
      throw error
    }
  }

  /** Sends `count` follows at once, beside the stream (a backlog for the consumers); resolves once all are accepted. */
  async burst (count: number): Promise<void> {
    const burst = this.#bursts++
    await Promise.all(Array.from({ length: count }, async (_, i) => await this.send(`burst-${burst}-${i}`, USERS[(i + 1) % USERS.length]!, USERS[i % USERS.length]!)))
  }

  /** Resolves once `more` follows more are accepted, within `timeoutMs`; rejects at once if the stream failed. */
  async accepting (more: number, timeoutMs: number): Promise<void> {
    const count = this.acceptedCount + more
    await this.#waiters.until(() => `only ${this.acceptedCount} of ${count} follows accepted${this.#failure === undefined ? '' : `: ${this.#failure.message}`}`,
      () => this.acceptedCount >= count || this.#failure !== undefined, timeoutMs)
    if (this.#failure !== undefined) throw this.#failure
  }

  /** POSTs one follow until accepted (see the class); returns the notification's id. */
  async send (key: string, follower: string, followee: string): Promise<string> {
    const deadline = Date.now() + KEY_BOUND_MS
    while (Date.now() < deadline) {
      const targets = this.#options.targets
      const url = targets[this.#next++ % targets.length]!
      let response: Response
      try {
        response = await follow(url, this.#options.tokens.get(follower)!, followee, { 'idempotency-key': key }, AbortSignal.timeout(ANSWER_BOUND_MS))
      } catch {
        this.answers.push({ key, url, status: 'network error', at: Date.now() })
        continue // the next gateway, at once: this one is not there
      }
      const body = await response.json() as { notification?: { id: string }, code?: string }
      this.answers.push({ key, url, status: response.status, ...(body.code === undefined ? {} : { code: body.code }), ...(body.notification === undefined ? {} : { id: body.notification.id }), at: Date.now() })
      if (response.status === 202) {
        this.accepted.get(followee)!.push(body.notification!.id)
        this.#waiters.wake()
        return body.notification!.id
      }
      if (response.status !== 503 && response.status !== 429) throw new Error(`follow ${key} answered ${response.status} ${body.code ?? ''} on ${url}`)
      await delay(Math.min(Number(response.headers.get('retry-after')) || 1, 5) * 1000)
    }
    throw new Error(`follow ${key} was not accepted within ${KEY_BOUND_MS} ms`)
  }
}

/**
 * Sends one more follow to each user after the stream and waits until every tab got its user's:
 * a user's records share a partition, so everything accepted before it (and any duplicate of it)
 * has reached the tab by then. Then checks each tab: seq 1, 2, 3… with no hole and no repeat,
 * every 202 of its user exactly once, and nothing that was not a 202.
 */
export async function checkTabs (t: Test, stream: FollowStream, tabs: ResumingTab[], boundMs: number): Promise<void> {
  for (const [index, followee] of USERS.entries()) await stream.send(`marker-${followee}`, USERS[(index + 1) % USERS.length]!, followee)
  for (const tab of tabs) await tab.reached(stream.accepted.get(tab.userId)!.at(-1)!, boundMs)
  for (const tab of tabs) {
    const expected = stream.accepted.get(tab.userId)!
    const seqs = tab.received.map(({ seq }) => seq)
    t.same(seqs, expected.map((_, i) => i + 1), `${tab.name}: seq 1–${expected.length}, no hole and no repeat (${tab.received.length} frames)`)
    const counts = new Map<string, number>()
    for (const { id } of tab.received) counts.set(id, (counts.get(id) ?? 0) + 1)
    t.same(expected.filter((id) => counts.get(id) !== 1), [], `${tab.name}: each of the ${expected.length} accepted follows exactly once`)
    t.same(tab.received.filter(({ id }) => !expected.includes(id)), [], `${tab.name}: nothing but the 202s`)
    t.equal(tab.resets, 0, `${tab.name}: no resume was reset`)
  }
}

/** Reads the shared inbox in PostgreSQL: each user's rows are seq 1…n, and exactly the 202s. */
export async function checkInbox (t: Test, databaseUrl: string, stream: FollowStream): Promise<void> {
  const pool = new Pool({ connectionString: databaseUrl, max: 1 })
  try {
    const { rows } = await pool.query<{ user_id: string, seq: string, id: string }>('SELECT user_id, seq, id FROM notifications ORDER BY user_id, seq')
    for (const userId of USERS) {
      const stored = rows.filter((row) => row.user_id === userId)
      const expected = stream.accepted.get(userId)!
      t.same(stored.map(({ seq }) => Number(seq)), expected.map((_, i) => i + 1), `inbox of user ${userId}: seq 1–${expected.length}, contiguous`)
      t.same(stored.map(({ id }) => id).sort(), [...expected].sort(), `inbox of user ${userId}: every 202 once, and nothing else`)
    }
  } finally {
    await pool.end()
  }
}
