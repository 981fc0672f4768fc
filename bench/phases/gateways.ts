import { join } from 'node:path'
import { waitForAssignment, type Assignment } from '../consumer-group.js'
import { formatCpu, loadAverage, type BenchContext } from '../context.js'
import { ClientFleet, SOCKETS_PER_PROCESS } from '../fleet.js'
import type { FollowWorkerApi } from '../follow-worker.js'
import { appendDelta, histogramOf, INBOX_APPEND, loopDelayOf, scrapeMetrics, type AppendSummary, type LoopDelay } from '../gateway-metrics.js'
import { ChildWorker } from '../ipc.js'
import { benchDir } from '../paths.js'
import { CpuMeter } from '../proc.js'
import type { ProduceWorkerApi } from '../produce-worker.js'
import type { User } from '../../server/directory.js'
import { recipientAt } from '../producer.js'
import { RedisTap } from '../redis-tap.js'
import { startSharedStack, type SharedStack } from '../shared-stack.js'
import { round, summarize, type LatencySummary } from '../stats.js'
import { drain, matchFrames, settle, type FrameCounts, type FrameMatch } from '../received-frames.js'

export type SetupName = 'sqlite' | 'shared'

/** How a step's notifications reached the setup's tabs, whatever sent them. */
export interface Delivery extends FrameCounts {
  loadAverageBefore: number[]
  /** One per tab of each notification's recipient. */
  framesExpected: number
  framesReceived: number
  /** Frames received per second, from the first send to the last frame. */
  framesPerSecond: number
  /** Send (the producer's, or the follow's request) → frame read in a client process (ms), over every tab's frame. */
  frame: LatencySummary | undefined
  /** Send → the gateway's Redis publish of it, seen by a tap on a sample of the users (shared setup only). */
  publish: LatencySummary | undefined
  /** Percent of one core per process, from the first send until the last frame came. */
  cpu: Record<string, number>
  /** The setup's gateways as named in `cpu`; `loopDelay` and `inboxAppend` are in this order. */
  gateways: string[]
  loopDelay: Array<LoopDelay | undefined>
  /** Each gateway's inbox transactions (one per consumed batch) over the step, from notify_inbox_append_seconds. */
  inboxAppend: Array<AppendSummary | undefined>
}

/** Records produced to one setup at one rate, and how their frames came to its tabs. */
export interface GatewaysStep extends Delivery {
  setup: SetupName
  label: string
  /** `latency`: a fixed rate for the step's duration; `burst`: records sent as fast as the producer goes. */
  kind: 'latency' | 'burst'
  rate: number
  sent: number
  acked: number
  failed: number
  errorSample: string[]
  producedPerSecond: number
  /** Producer's send → Kafka's ack of it (ms). */
  kafkaAck: LatencySummary | undefined
}

/** POST /api/follows to one setup's gateways at one rate, open loop, and how the 202s' frames came to its tabs. */
export interface FollowStep extends Delivery {
  setup: SetupName
  label: string
  rate: number
  /** Due on the schedule; skipped: due while the sender's bound of requests out was reached. */
  due: number
  sent: number
  skipped: number
  accepted: number
  /** Another status than 202, or no answer. */
  failed: number
  statuses: Record<string, number>
  errorSample: string[]
  acceptedPerSecond: number
  /** Request written → 202 read, in the sender (ms). */
  ack: LatencySummary | undefined
  /** The sender's bound of requests out at once, and its request timeout. */
  maxInFlight: number
  requestTimeoutMs: number
}

export interface GatewaysResult {
  skipped?: string
  gateways: number
  recipients: number
  /** Recipients with a tab on every gateway (the others have one tab). */
  multiTabUsers: number
  /** Tabs (sockets) per gateway in the shared setup; the SQLite gateway holds all of them. */
  tabsPerGateway: number[]
  /** Partitions of the topic per shared gateway, as the broker assigned them. */
  assignment: Assignment
  /** Users whose Redis channels the publish tap listened on. */
  tapUsers: number
  warmUp: Array<Pick<GatewaysStep, 'setup' | 'rate' | 'sent' | 'missing'>>
  steps: GatewaysStep[]
  followWarmUp: Array<Pick<FollowStep, 'setup' | 'rate' | 'accepted' | 'failed' | 'missing'>>
  follows: FollowStep[]
}

/** One of the two setups under comparison: its gateways, one client fleet per set of tabs, its producer. */
interface Setup {
  name: SetupName
  urls: string[]
  /** Its gateways as the CPU meter names them, one per distinct url. */
  gateways: string[]
  /** Fleet k holds tab set k: one socket per user in it. */
  fleets: ClientFleet[]
  producer: ChildWorker<ProduceWorkerApi>
  tap: RedisTap | undefined
}

const ASSIGNMENT_TIMEOUT_MS = 60_000
const CONNECT_TIMEOUT_MS = 120_000
const CALL_MARGIN_MS = 30_000
/** One user in this many has the tap on their channel. */
const TAP_EVERY = 20
/** Client hosts 127.0.0.x of the SQLite setup's fleets, then the shared one's; the main fleet has 10 on. */
const FIRST_HOST: Record<SetupName, number> = { sqlite: 40, shared: 50 }

/**
 * `--gateways N`: N gateways with one consumer group on one topic, sharing a PostgreSQL inbox and
 * a Redis fan-out, against the stack's one SQLite gateway, step by step in turn so both see the
 * same machine. Both hold the same tabs: each recipient has one, on the N tab sets in turn, and
 * some have one in every set; in the shared setup tab set k is on gateway k, in the SQLite one
 * every set is on its gateway. Records go straight to Kafka as in the produce phase.
 */
export async function gatewaysPhase (context: BenchContext): Promise<GatewaysResult> {
  const { cleanup, progress, roles, settings, stack } = context
  const { count, latencyRates, durationMs, burst, warmUp, follows, multiTabShare, drainMs } = settings.gateways
  const tabSets = assignTabs(roles.recipients, count, multiTabShare)
  const base = {
    gateways: count,
    recipients: roles.recipients.length,
    multiTabUsers: tabSets.multiTab,
    tabsPerGateway: tabSets.sets.map((set) => set.size),
    assignment: [],
    tapUsers: 0,
    warmUp: [],
    steps: [],
    followWarmUp: [],
    follows: []
  }
  const brokers = stack.brokers
  if (brokers === undefined || stack.launchGateway === undefined) return { ...base, skipped: 'the gateway or broker is given (GATEWAY_URL without KAFKA_BROKERS, or GATEWAY_URL): the bench cannot start more gateways' }

  // The SQLite gateway's own tabs are this phase's; the main fleet's would double its frames.
  await context.fleet.disconnect()
  const stops: Array<() => Promise<void> | void> = []
  const own = (name: string, stop: () => Promise<void> | void): void => {
    stops.push(stop)
    cleanup.add(name, stop)
  }
  try {
    const shared = await startSharedStack(stack, count, cleanup, (line) => progress.log(line))
    own('shared gateways', () => shared.stop())
    progress.log(`Shared gateways at ${shared.gateways.map((gateway) => `${gateway.url} (pid ${gateway.pid})`).join(', ')}; topic ${shared.topic}`)
    const assignment = await waitForAssignment(brokers, shared.groupId, shared.topic, count, ASSIGNMENT_TIMEOUT_MS)
    progress.log(`Partitions per shared gateway: ${assignment.map((partitions) => `[${partitions.join(',')}]`).join(' ')}`)
    if (assignment.length < count || assignment.some((partitions) => partitions.length === 0)) {
      throw new Error(`not every shared gateway got a partition within ${ASSIGNMENT_TIMEOUT_MS / 1000} s: ${JSON.stringify(assignment)}`)
    }
    const tapUsers = roles.recipients.filter((_, i) => i % TAP_EVERY === 0).map((user) => user.id)
    const setups: Setup[] = []
    for (const [name, urls, topic] of [
      ['sqlite', tabSets.sets.map(() => stack.url), stack.topic],
      ['shared', shared.gateways.map((gateway) => gateway.url), shared.topic]
    ] as const) {
      const setup = await startSetup(context, name, [...urls], topic, tabSets.sets, name === 'shared' ? shared.redisUrl : undefined, tapUsers, own)
      setups.push(setup)
    }
    const followWorker = new ChildWorker<FollowWorkerApi>(join(benchDir, 'follow-worker.ts'), 'follow-sender')
    own('follow sender', () => followWorker.stop())
    await followWorker.call('init', { tokens: stack.tokens, followers: roles.followers.map((user) => user.id) }, 60_000)
    const all = { context, shared, setups, followWorker, drainMs }

    const warm = []
    for (const setup of setups) warm.push(await runStep(all, setup, 'latency', `${setup.name} warm-up`, warmUp.rate, warmUp.durationMs))
    const steps: GatewaysStep[] = []
    for (const rate of latencyRates) {
      for (const setup of setups) steps.push(await runStep(all, setup, 'latency', `${setup.name} ${rate}/s`, rate, durationMs))
    }
    // Follows before the bursts: a burst leaves the most work behind.
    const followWarm = []
    for (const setup of setups) followWarm.push(await runFollowStep(all, setup, `${setup.name} follows warm-up`, follows.warmUp.rate, follows.warmUp.durationMs))
    const followSteps: FollowStep[] = []
    for (const rate of follows.rates) {
      for (const setup of setups) followSteps.push(await runFollowStep(all, setup, `${setup.name} follows ${rate}/s`, rate, follows.durationMs))
    }
    for (const setup of setups) {
      steps.push(await runStep(all, setup, 'burst', `${setup.name} burst of ${burst.records}`, burst.rate, burst.records / burst.rate * 1000))
    }
    return {
      ...base,
      assignment,
      tapUsers: tapUsers.length,
      warmUp: warm.map((step) => ({ setup: step.setup, rate: step.rate, sent: step.sent, missing: step.missing })),
      steps,
      followWarmUp: followWarm.map((step) => ({ setup: step.setup, rate: step.rate, accepted: step.accepted, failed: step.failed, missing: step.missing })),
      follows: followSteps
    }
  } finally {
    for (const stop of stops.splice(0).reverse()) await Promise.resolve().then(stop).catch(() => {})
  }
}

/**
 * Tab set k of `count`: the one-tab recipients in turn, and every `1 / share`-th recipient, who
 * has a tab in every set.
 */
function assignTabs (recipients: readonly User[], count: number, share: number): { sets: Array<Set<string>>, multiTab: number } {
  const sets = Array.from({ length: count }, () => new Set<string>())
  const every = Math.max(1, Math.round(1 / share))
  let single = 0
  let multiTab = 0
  recipients.forEach((user, i) => {
    if (i % every === 0) {
      multiTab++
      for (const set of sets) set.add(user.id)
    } else {
      sets[single++ % count]!.add(user.id)
    }
  })
  return { sets, multiTab }
}

async function startSetup (
  context: BenchContext,
  name: SetupName,
  urls: string[],
  topic: string,
  tabSets: ReadonlyArray<Set<string>>,
  redisUrl: string | undefined,
  tapUsers: readonly string[],
  own: (name: string, stop: () => Promise<void> | void) => void
): Promise<Setup> {
  const { progress, stack, settings } = context
  const producer = new ChildWorker<ProduceWorkerApi>(join(benchDir, 'produce-worker.ts'), `record-producer-${name}`)
  own(`${name} record producer`, () => producer.stop())
  await producer.call('init', { brokers: stack.brokers!, topic }, 60_000)
  const fleets: ClientFleet[] = []
  let host = FIRST_HOST[name]
  for (const [k, users] of tabSets.entries()) {
    const processes = Math.ceil(users.size / SOCKETS_PER_PROCESS)
    const fleet = await ClientFleet.start(processes, urls[k]!, stack.tokens, settings.connectConcurrency, host)
    host += processes
    own(`${name} tab set ${k + 1} clients`, () => fleet.stop())
    fleets.push(fleet)
    const opened = await fleet.connect([...users], CONNECT_TIMEOUT_MS)
    progress.log(`${name}: tab set ${k + 1}, ${opened.connected} sockets to ${urls[k]} in ${round(opened.elapsedMs / 1000, 1)} s` +
      `${opened.failed > 0 ? `; ${opened.failed} failed: ${opened.errors.join('; ')}` : ''}`)
    if (opened.failed > 0) throw new Error(`${opened.failed} sockets of ${name} tab set ${k + 1} could not connect`)
  }
  const tap = redisUrl === undefined ? undefined : await RedisTap.start(redisUrl, tapUsers)
  if (tap !== undefined) own(`${name} Redis tap`, () => tap.stop())
  const gateways = name === 'sqlite' ? ['gateway'] : [...new Set(urls)].map((_, k) => `gateway-${k + 1}`)
  return { name, urls, gateways, fleets, producer, tap }
}

interface Everything { context: BenchContext, shared: SharedStack, setups: Setup[], followWorker: ChildWorker<FollowWorkerApi>, drainMs: number }

/** What a step sent, whoever sent it: notification ids, their send times, and whom each goes to. */
interface Sent { ids: string[], sentAt: Float64Array, recipientOf: (i: number) => string }

async function runStep (all: Everything, setup: Setup, kind: GatewaysStep['kind'], label: string, rate: number, durationMs: number): Promise<GatewaysStep> {
  const { context } = all
  const { progress, roles, settings } = context
  const { result: sent, delivery } = await measure(all, setup, label, async () => {
    const result = await setup.producer.call('run', {
      label,
      rate,
      durationMs,
      recipients: roles.recipients,
      actors: roles.followers,
      drainMs: settings.drainMs
    }, durationMs + settings.drainMs + CALL_MARGIN_MS)
    return { result, sent: { ids: splitIds(result.ids), sentAt: result.sentAt, recipientOf: (i) => recipientAt(roles.recipients, i).id } }
  })
  const step: GatewaysStep = {
    setup: setup.name,
    label,
    kind,
    rate,
    sent: sent.sent,
    acked: sent.acked,
    failed: sent.failed,
    errorSample: sent.errorSample,
    producedPerSecond: round(sent.sent / (Math.max(durationMs, sent.sendingMs) / 1000), 0),
    kafkaAck: summarize(sent.ackMs),
    ...delivery
  }
  progress.log(`${label}: ${step.producedPerSecond}/s produced, ${describe(step, 'produce')}`)
  return step
}

async function runFollowStep (all: Everything, setup: Setup, label: string, rate: number, durationMs: number): Promise<FollowStep> {
  const { context, followWorker } = all
  const { progress, roles } = context
  const followees = roles.recipients.map((user) => user.id)
  const { result: run, delivery } = await measure(all, setup, label, async () => {
    const result = await followWorker.call('run', { label, urls: [...new Set(setup.urls)], followees, rate, durationMs, drainMs: context.settings.drainMs },
      durationMs + context.settings.drainMs + CALL_MARGIN_MS)
    return { result, sent: { ids: splitIds(result.ids), sentAt: result.sentAt, recipientOf: (i) => followees[result.followeeIndex[i]!]! } }
  })
  const step: FollowStep = {
    setup: setup.name,
    label,
    rate,
    due: run.due,
    sent: run.sent,
    skipped: run.skipped,
    accepted: run.accepted,
    failed: run.failed,
    statuses: run.statuses,
    errorSample: run.errorSample,
    acceptedPerSecond: round(run.accepted / (Math.max(durationMs, run.sendingMs) / 1000), 0),
    ack: summarize(run.ackMs),
    maxInFlight: run.maxInFlight,
    requestTimeoutMs: run.requestTimeoutMs,
    ...delivery
  }
  const { ack } = step
  progress.log(`${label}: ${step.accepted}/${step.due} accepted (${step.failed} failed, ${step.skipped} skipped${step.errorSample.length > 0 ? `: ${step.errorSample.join('; ')}` : ''}), ` +
    `POST → 202 ${ack === undefined ? 'none' : `p50 ${ack.p50} p99 ${ack.p99} ms`}; ${describe(step, 'follow')}`)
  return step
}

/**
 * Settles the clients, sends (through `send`), waits for the frames the sent notifications make
 * on the setup's tabs and matches them; the gateways' /metrics are read before and after.
 */
async function measure<T> (all: Everything, setup: Setup, label: string, send: () => Promise<{ result: T, sent: Sent }>): Promise<{ result: T, delivery: Delivery }> {
  const { context, setups, drainMs } = all
  const fleets = setups.flatMap((candidate) => candidate.fleets)
  await settle(context, fleets)
  setup.tap?.take()
  const loadAverageBefore = loadAverage()
  // Once per gateway: a scrape resets its loop-delay histogram, and the SQLite setup's tab sets share one.
  const urls = [...new Set(setup.urls)]
  const before = await Promise.all(urls.map((url) => scrapeMetrics(url)))
  const cpu = meterAll(all)
  const { result, sent } = await send()

  // Which tabs each notification should reach: its recipient's, in every tab set holding them.
  const expected = setup.fleets.map(() => ({ ids: [] as string[], sentAt: [] as number[] }))
  const tabSets = setup.fleets.map((fleet) => new Set(fleet.connected))
  for (let i = 0; i < sent.ids.length; i++) {
    const recipient = sent.recipientOf(i)
    tabSets.forEach((users, k) => {
      if (!users.has(recipient)) return
      expected[k]!.ids.push(sent.ids[i]!)
      expected[k]!.sentAt.push(sent.sentAt[i]!)
    })
  }
  const framesExpected = expected.reduce((total, set) => total + set.ids.length, 0)
  await drain(context, label, framesExpected, drainMs, setup.fleets)
  const busy = cpu.read()
  const after = await Promise.all(urls.map((url) => scrapeMetrics(url)))
  const matches: FrameMatch[] = []
  for (const [k, fleet] of setup.fleets.entries()) {
    matches.push(await matchFrames(context, expected[k]!.ids.join('\n'), Float64Array.from(expected[k]!.sentAt), fleet))
  }
  const sum = (count: (match: FrameMatch) => number): number => matches.reduce((total, match) => total + count(match), 0)
  const latencies = Float64Array.from(matches.flatMap((match) => [...match.latencies]))
  const firstSend = sent.sentAt.length === 0 ? 0 : sent.sentAt[0]!
  const lastFrame = Math.max(firstSend, ...matches.map((match) => match.frameAt.reduce((last, at) => Math.max(last, at), 0)))
  const closes: Record<string, number> = {}
  for (const match of matches) for (const [code, times] of Object.entries(match.closes)) closes[code] = (closes[code] ?? 0) + times
  const appendOf = (text: string | undefined): ReturnType<typeof histogramOf> => text === undefined ? undefined : histogramOf(text, INBOX_APPEND)
  return {
    result,
    delivery: {
      loadAverageBefore,
      framesExpected,
      framesReceived: latencies.length,
      framesPerSecond: lastFrame > firstSend ? round(latencies.length / ((lastFrame - firstSend) / 1000), 0) : 0,
      frame: summarize(latencies),
      publish: setup.tap === undefined ? undefined : publishLatency(setup.tap.take(), sent.ids, sent.sentAt),
      missing: sum((match) => match.missing),
      duplicates: sum((match) => match.duplicates),
      seqRepeats: sum((match) => match.seqRepeats),
      seqGaps: sum((match) => match.seqGaps),
      unexpected: sum((match) => match.unexpected),
      closes,
      cpu: busy,
      gateways: setup.gateways,
      loopDelay: after.map((text) => text === undefined ? undefined : loopDelayOf(text)),
      inboxAppend: urls.map((_, k) => appendDelta(appendOf(before[k]), appendOf(after[k])))
    }
  }
}

/** The delivery half of a step's progress line. */
function describe (step: Delivery, what: string): string {
  const { frame, publish } = step
  const appends = step.inboxAppend.map((append, k) => `${step.gateways[k]} ${append === undefined ? '?' : `${append.batches} × ${append.meanMs ?? '–'} ms`}`).join(', ')
  return `${step.framesReceived}/${step.framesExpected} frames, ${step.framesPerSecond} frames/s; ` +
    `${frame === undefined ? 'no frames' : `${what} → frame p50 ${frame.p50} p99 ${frame.p99} max ${frame.max} ms`}` +
    `${publish === undefined ? '' : `; → Redis publish p50 ${publish.p50} p99 ${publish.p99} ms`}; ` +
    `${step.missing} missing, ${step.duplicates + step.seqRepeats} doubled, ${step.seqGaps} seq gaps, ${step.unexpected} unexpected; inbox appends ${appends}; ` +
    `cpu ${formatCpu(step.cpu)}; load average before ${step.loadAverageBefore.join(' ')}`
}

function splitIds (ids: string): string[] {
  return ids === '' ? [] : ids.split('\n')
}

/** Every process of both setups, each named: the idle setup's share shows what idling costs. */
function meterAll (all: Everything): CpuMeter {
  const { context, shared, setups } = all
  return new CpuMeter({
    gateway: context.stack.gatewayPid,
    ...Object.fromEntries(shared.gateways.map((gateway, k) => [`gateway-${k + 1}`, gateway.pid])),
    kafka: context.stack.brokerPid,
    postgres: shared.postgresPid === undefined ? undefined : { tree: shared.postgresPid },
    redis: shared.redisPid,
    load: [process.pid, ...setups.map((setup) => setup.producer.pid)],
    follows: all.followWorker.pid,
    clients: setups.flatMap((setup) => setup.fleets.flatMap((fleet) => fleet.pids))
  })
}

/** Send → publish seen by the tap, for the records it saw (ms). */
function publishLatency (publishedAt: Map<string, number>, ids: readonly string[], sentAt: Float64Array): LatencySummary | undefined {
  const latencies: number[] = []
  for (let i = 0; i < ids.length; i++) {
    const at = publishedAt.get(ids[i]!)
    if (at !== undefined) latencies.push(at - sentAt[i]!)
  }
  return summarize(latencies)
}
