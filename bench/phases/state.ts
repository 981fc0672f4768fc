import { waitUntil } from '../clock.js'
import { formatCpu, meter, type BenchContext } from '../context.js'
import { HttpPool } from '../http-client.js'
import { runOpenLoop } from '../schedule.js'
import { mintTokens } from '../tokens.js'
import { round } from '../stats.js'
import { runStep, startSender, type PublishStep } from './publish.js'

/** The state changes sent alongside a step: how many, answered 200, and the feed revs they took. */
export interface MarksRun {
  rate: number
  sent: number
  /** Due while MAX_IN_FLIGHT were out: never sent. */
  skipped: number
  accepted: number
  failed: number
  /** Answers whose `rev` moved on (a real state change, not a no-op). */
  changes: number
  errorSample: string[]
}

/**
 * Before the measured steps, every recipient's feed brought to where a user who uses the buttons
 * keeps it: marked all read, then cleared, once. The phases before left each feed hundreds of
 * notifications long and all unread, so that first pair moves every row (a one-off per user); the
 * measured changes then move what arrived since, as they would for a user who clicks them daily.
 */
export interface SettleRun {
  users: number
  /** Feeds that answered both changes 200. */
  settled: number
  failed: number
  /** Notifications in the inbox (not archived) per feed before its clear-all, on average: the rows each pair moved. */
  meanFeedLength: number
  seconds: number
  /** Gateway CPU per settled feed (µs), the two changes together. */
  gatewayCpuPerFeedUs: number | undefined
  errorSample: string[]
}

export interface StateStep {
  step: PublishStep
  marks: MarksRun | undefined
}

export interface StateResult {
  recipients: number
  settle: SettleRun
  steps: StateStep[]
  /** Gateway CPU per state change (µs): the step with marks over the plain one, per change made. */
  gatewayCpuPerChangeUs: number | undefined
}

const MAX_IN_FLIGHT = 64
const REQUEST_TIMEOUT_MS = 10_000
const ERROR_SAMPLE = 5

/**
 * The feed state's cost. Notifications flow at a fixed rate (a backend's publish, one recipient per
 * request, to the connected users) in three steps of the same length: plain; each with a group key
 * (every one joins its recipient's group: the group is read and written in the append); and plain
 * with state changes at a fixed rate alongside ("mark all read" and "clear all" up to the newest
 * cursor, alternately, each user in turn, from the bench process). Publish → frame latency of the
 * three, and the gateway's CPU per state change from the difference.
 */
export async function statePhase (context: BenchContext): Promise<StateResult> {
  const { settings, roles } = context
  const { rate, marksRate, durationMs, warmUp } = settings.state
  const sender = await startSender(context)
  try {
    await runStep(context, sender, 'state warm-up', 1, warmUp.rate, warmUp.durationMs)
    // Each user's rev after the settle: a later answer with a higher one made a change.
    const revs = new Map<number, number>()
    const settle = await settleFeeds(context, revs)
    const plain = await runStep(context, sender, `notifications at ${rate}/s`, 1, rate, durationMs)
    const grouped = await runStep(context, sender, `notifications at ${rate}/s, grouped`, 1, rate, durationMs, { groupKey: 'bench' })
    let marks: MarksRun | undefined
    const withMarks = await runStep(context, sender, `notifications at ${rate}/s with ${marksRate} state changes/s`, 1, rate, durationMs, {
      alongside: async () => { marks = await sendMarks(context, marksRate, durationMs, revs) }
    })
    const cpuOf = (step: PublishStep): number | undefined => step.cpu['gateway'] === undefined ? undefined : step.cpu['gateway'] / 100 * durationMs / 1000
    const [plainCpu, marksCpu] = [cpuOf(plain), cpuOf(withMarks)]
    const gatewayCpuPerChangeUs = plainCpu === undefined || marksCpu === undefined || marks === undefined || marks.changes === 0
      ? undefined
      : round((marksCpu - plainCpu) / marks.changes * 1e6, 1)
    context.progress.log(`state changes: ${marks?.changes ?? 0} made (${marks?.failed ?? 0} failed, ${marks?.skipped ?? 0} skipped), gateway CPU ${gatewayCpuPerChangeUs ?? '–'} µs per change; cpu ${formatCpu(withMarks.cpu)}`)
    return { recipients: roles.recipients.length, settle, steps: [{ step: plain, marks: undefined }, { step: grouped, marks: undefined }, { step: withMarks, marks }], gatewayCpuPerChangeUs }
  } finally {
    await sender.stop()
  }
}

/** Signed-in access to every recipient's feed state: a pooled connection, each user's token, and "up to the newest". */
interface MarksClient {
  users: string[]
  /** Answers 200 with the body, else a line for the error sample. */
  post: (user: number, path: string, done: (answer: { unread: number, unseen: number, rev: number } | undefined, error: string | undefined) => void) => void
  destroy: () => void
}

async function marksClient (context: BenchContext): Promise<MarksClient> {
  const { stack, roles } = context
  const users = roles.recipients.map((user) => user.id)
  const tokens = await mintTokens(stack.tokens, users)
  const { hostname, port, host } = new URL(stack.url)
  const pool = new HttpPool({ host: hostname, port: Number(port || 80), maxConnections: MAX_IN_FLIGHT, timeoutMs: REQUEST_TIMEOUT_MS })
  // A seq past any the bench reaches: "up to the newest" without reading each user's feed first.
  const body = JSON.stringify({ upTo: `${await epochOf(stack.url, tokens[0]!)}.999999999` })
  return {
    users,
    post: (user, path, done) => {
      pool.send(`POST ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\nauthorization: Bearer ${tokens[user]!}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, (status, text, error) => {
        if (status === 200) done(JSON.parse(text) as { unread: number, unseen: number, rev: number }, undefined)
        else done(undefined, status === 0 ? `no answer: ${error ?? '?'}` : `${status}: ${text.slice(0, 200)}`)
      })
    },
    destroy: () => pool.destroy()
  }
}

/** Marks every recipient's feed all read, then clears it, MAX_IN_FLIGHT users at a time (closed loop, bounded by the users and REQUEST_TIMEOUT_MS each). */
async function settleFeeds (context: BenchContext, revs: Map<number, number>): Promise<SettleRun> {
  const client = await marksClient(context)
  const cpu = meter(context)
  const started = performance.now()
  const run: SettleRun = { users: client.users.length, settled: 0, failed: 0, meanFeedLength: 0, seconds: 0, gatewayCpuPerFeedUs: undefined, errorSample: [] }
  let feedLengths = 0
  try {
    let next = 0
    const fail = (error: string | undefined): void => {
      run.failed++
      if (run.errorSample.length < ERROR_SAMPLE && error !== undefined) run.errorSample.push(error)
    }
    /** The change's answer, or undefined (counted as failed) when it was not 200. */
    const changed = (user: number, path: string): Promise<{ unseen: number, rev: number } | undefined> => new Promise((resolve) => {
      client.post(user, path, (answer, error) => {
        if (answer === undefined) fail(error)
        resolve(answer)
      })
    })
    await Promise.all(Array.from({ length: Math.min(MAX_IN_FLIGHT, client.users.length) }, async () => {
      while (next < client.users.length) {
        const user = next++
        const read = await changed(user, '/api/notifications/read')
        if (read === undefined) continue
        // Nothing marks the bench's feeds seen: after the read, `unseen` counts every notification in the inbox.
        const cleared = await changed(user, '/api/notifications/archive')
        if (cleared === undefined) continue
        revs.set(user, cleared.rev)
        run.settled++
        feedLengths += read.unseen
      }
    }))
  } finally {
    client.destroy()
  }
  run.seconds = round((performance.now() - started) / 1000, 2)
  run.meanFeedLength = run.settled === 0 ? 0 : round(feedLengths / run.settled, 1)
  const busy = cpu.read()
  run.gatewayCpuPerFeedUs = cpu.microsPer('gateway', run.settled)
  context.progress.log(`settle: ${run.settled}/${run.users} feeds marked all read then cleared (${run.failed} failed${run.errorSample.length > 0 ? `: ${run.errorSample.join('; ')}` : ''}), ` +
    `${run.meanFeedLength} notifications each on average, in ${run.seconds} s; gateway ${run.gatewayCpuPerFeedUs ?? '–'} µs CPU per feed; cpu ${formatCpu(busy)}`)
  return run
}

/**
 * State changes at `rate` for `durationMs`, open loop: user i mod N marks all read (even i) or
 * clears all (odd i), up to the newest cursor; `lastRev` holds each user's rev before (moved on here).
 */
async function sendMarks (context: BenchContext, rate: number, durationMs: number, lastRev: Map<number, number>): Promise<MarksRun> {
  const client = await marksClient(context)
  const { users } = client
  const result: MarksRun = { rate, sent: 0, skipped: 0, accepted: 0, failed: 0, changes: 0, errorSample: [] }
  let inFlight = 0
  const total = Math.max(1, Math.round(rate * durationMs / 1000))
  try {
    let next = 0
    await runOpenLoop(total, rate, durationMs + 5000, (due) => {
      for (; next < due; next++) {
        if (inFlight >= MAX_IN_FLIGHT) {
          result.skipped++
          continue
        }
        const user = next % users.length
        const path = next % 2 === 0 ? '/api/notifications/read' : '/api/notifications/archive'
        inFlight++
        result.sent++
        client.post(user, path, (answer, error) => {
          inFlight--
          if (answer === undefined) {
            result.failed++
            if (result.errorSample.length < ERROR_SAMPLE && error !== undefined) result.errorSample.push(error)
            return
          }
          result.accepted++
          if (answer.rev > (lastRev.get(user) ?? 0)) result.changes++
          lastRev.set(user, Math.max(answer.rev, lastRev.get(user) ?? 0))
        })
      }
      return next
    })
    await waitUntil(() => inFlight === 0, REQUEST_TIMEOUT_MS, 10)
  } finally {
    client.destroy()
  }
  return result
}

async function epochOf (url: string, token: string): Promise<string> {
  const response = await fetch(`${url}/api/notifications?limit=1`, { headers: { authorization: `Bearer ${token}` } })
  const { items } = await response.json() as { items: Array<{ cursor: string }> }
  const cursor = items[0]?.cursor
  if (cursor === undefined) throw new Error('no notification yet to read the inbox epoch from: the warm-up should have sent some')
  return cursor.split('.')[0]!
}
