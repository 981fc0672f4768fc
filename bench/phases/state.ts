import { waitUntil } from '../clock.js'
import { formatCpu, type BenchContext } from '../context.js'
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

export interface StateStep {
  step: PublishStep
  marks: MarksRun | undefined
}

export interface StateResult {
  recipients: number
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
    const plain = await runStep(context, sender, `notifications at ${rate}/s`, 1, rate, durationMs)
    const grouped = await runStep(context, sender, `notifications at ${rate}/s, grouped`, 1, rate, durationMs, { groupKey: 'bench' })
    let marks: MarksRun | undefined
    const withMarks = await runStep(context, sender, `notifications at ${rate}/s with ${marksRate} state changes/s`, 1, rate, durationMs, {
      alongside: async () => { marks = await sendMarks(context, marksRate, durationMs) }
    })
    const cpuOf = (step: PublishStep): number | undefined => step.cpu['gateway'] === undefined ? undefined : step.cpu['gateway'] / 100 * durationMs / 1000
    const [plainCpu, marksCpu] = [cpuOf(plain), cpuOf(withMarks)]
    const gatewayCpuPerChangeUs = plainCpu === undefined || marksCpu === undefined || marks === undefined || marks.changes === 0
      ? undefined
      : round((marksCpu - plainCpu) / marks.changes * 1e6, 1)
    context.progress.log(`state changes: ${marks?.changes ?? 0} made (${marks?.failed ?? 0} failed, ${marks?.skipped ?? 0} skipped), gateway CPU ${gatewayCpuPerChangeUs ?? '–'} µs per change; cpu ${formatCpu(withMarks.cpu)}`)
    return { recipients: roles.recipients.length, steps: [{ step: plain, marks: undefined }, { step: grouped, marks: undefined }, { step: withMarks, marks }], gatewayCpuPerChangeUs }
  } finally {
    await sender.stop()
  }
}

/** State changes at `rate` for `durationMs`, open loop: user i mod N marks all read (even i) or clears all (odd i), up to the newest cursor. */
async function sendMarks (context: BenchContext, rate: number, durationMs: number): Promise<MarksRun> {
  const { stack, roles } = context
  const users = roles.recipients.map((user) => user.id)
  const tokens = await mintTokens(stack.tokens, users)
  const { hostname, port } = new URL(stack.url)
  const pool = new HttpPool({ host: hostname, port: Number(port || 80), maxConnections: MAX_IN_FLIGHT, timeoutMs: REQUEST_TIMEOUT_MS })
  const epoch = await epochOf(stack.url, tokens[0]!)
  // A seq past any the bench reaches: "up to the newest" without reading each user's feed first.
  const upTo = `${epoch}.999999999`
  const result: MarksRun = { rate, sent: 0, skipped: 0, accepted: 0, failed: 0, changes: 0, errorSample: [] }
  const lastRev = new Map<number, number>()
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
        const body = JSON.stringify({ upTo })
        const path = next % 2 === 0 ? '/api/notifications/read' : '/api/notifications/archive'
        inFlight++
        result.sent++
        pool.send(`POST ${path} HTTP/1.1\r\nhost: ${new URL(stack.url).host}\r\ncontent-type: application/json\r\nauthorization: Bearer ${tokens[user]!}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, (status, text, error) => {
          inFlight--
          if (status !== 200) {
            result.failed++
            if (result.errorSample.length < ERROR_SAMPLE) result.errorSample.push(status === 0 ? `no answer: ${error ?? '?'}` : `${status}: ${text.slice(0, 200)}`)
            return
          }
          result.accepted++
          const { rev } = JSON.parse(text) as { rev: number }
          if (rev > (lastRev.get(user) ?? 0)) result.changes++
          lastRev.set(user, Math.max(rev, lastRev.get(user) ?? 0))
        })
      }
      return next
    })
    await waitUntil(() => inFlight === 0, REQUEST_TIMEOUT_MS, 10)
  } finally {
    pool.destroy()
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
