import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { resultsDir } from './paths.js'
import { SUSTAINED_P99_MS, type ProduceStep } from './phases/produce.js'
import type { Delivery, GatewaysResult } from './phases/gateways.js'
import { fmt, INGEST_P99_MS, PEER_SERIES, PRODUCE_TARGETS, type BenchResults, type TargetVerdict } from './results.js'
import { latencySvg, rateSvg, type LatencyPoint, type RateSeries } from './svg.js'

const GIB = 1024 ** 3

/** Writes latest.json, latest.md, latency.svg and p99-vs-rate.svg; each appears whole or not at all. */
export async function writeReport (results: BenchResults): Promise<string[]> {
  await mkdir(resultsDir, { recursive: true })
  const points: LatencyPoint[] = (results.phases.produce?.steps ?? []).flatMap((step) => step.frame === undefined ? [] : [{ rate: step.rate, label: step.label, latency: step.frame }])
  const files: Array<[string, string]> = [
    ['latest.json', JSON.stringify(results, null, 2) + '\n'],
    ['latest.md', markdown(results)]
  ]
  if (points.length > 0) {
    files.push(['latency.svg', latencySvg(points,
      `kafka-notify: produce → frame, ${fmt(results.phases.produce?.recipients ?? 0, 0)} users (${results.settings.quick ? 'quick run' : 'full run'}, ${results.startedAt.slice(0, 10)})`,
      { x: 'records produced to Kafka per second (open loop)', y: 'produce → frame (ms, log scale)' },
      [...PRODUCE_TARGETS.map(({ rate, p99Ms }) => ({ ms: p99Ms, rate, text: `target p99 ≤ ${p99Ms}` })), { ms: SUSTAINED_P99_MS, text: `sustained: p99 < ${SUSTAINED_P99_MS} ms` }])])
  }
  files.push(['p99-vs-rate.svg', p99VsRate(results)])
  const written: string[] = []
  for (const [name, text] of files) {
    const path = join(resultsDir, name)
    await writeFile(`${path}.tmp`, text)
    await rename(`${path}.tmp`, path)
    written.push(path)
  }
  return written
}

/**
 * Produce → frame p99 per rate: this run's one gateway, over SSE too (the sse phase, when it ran),
 * its two or more (the gateways phase, when it ran), and the figures measured beside the Go peers on 2026-12-06 (dashed).
 */
function p99VsRate (results: BenchResults): string {
  const p99s = (steps: readonly ProduceStep[] = []): RateSeries['points'] => steps.flatMap((step) => step.frame === undefined ? [] : [{ rate: step.rate, p99Ms: step.frame.p99 }])
  const one = p99s(results.phases.produce?.steps)
  const sse = p99s(results.phases.sse?.steps)
  const gateways = results.phases.gateways
  const shared = (gateways?.steps ?? []).filter((step) => step.setup === 'shared' && step.kind === 'latency' && step.frame !== undefined)
    .map((step) => ({ rate: step.rate, p99Ms: step.frame!.p99 }))
  const colors = ['#7f7f7f', '#bcbd22']
  const series: RateSeries[] = [
    { label: one.length === 0 ? 'kafka-notify, one gateway: the produce phase did not run' : 'kafka-notify, one gateway (SQLite), this run', color: '#1f77b4', points: one },
    {
      label: gateways === undefined || gateways.skipped !== undefined
        ? 'kafka-notify, two gateways: not run (npm run bench -- --gateways 2)'
        : `kafka-notify, ${gateways.gateways} gateways (PostgreSQL + Redis), this run`,
      color: '#d62728',
      points: shared
    },
    ...(sse.length === 0 ? [] : [{ label: 'kafka-notify, one gateway, over SSE (event streams), this run', color: '#2ca02c', points: sse }]),
    ...PEER_SERIES.map((peer, i) => ({ ...peer, color: colors[i % colors.length]!, dashed: true }))
  ]
  const run = `${results.settings.quick ? 'quick run' : 'full run'}, ${results.startedAt.slice(0, 10)}`
  return rateSvg(series, `produce → frame p99 against rate, 2,000 users (${run})`,
    { x: 'records produced to Kafka per second (open loop)', y: 'p99 produce → frame (ms, log scale)' },
    [...PRODUCE_TARGETS.map(({ rate, p99Ms }) => ({ ms: p99Ms, rate, text: `≤ ${p99Ms}` })), { ms: SUSTAINED_P99_MS, text: `sustained: < ${SUSTAINED_P99_MS} ms` }])
}

export function targetsTable (targets: readonly TargetVerdict[]): string {
  const rows = targets.map((target) => `| ${target.name} | ${target.goal} | ${target.measured} | ${verdict(target.met)} | ` +
    `${target.cpuPerOperationUs === undefined ? '–' : fmt(target.cpuPerOperationUs, 1)} | ` +
    `${target.loopDelay === undefined ? '–' : pair(target.loopDelay.p99Ms, target.loopDelay.maxMs)} | ` +
    `${target.cpu === undefined ? '–' : cpu(target.cpu)} | ${target.loadAverageBefore?.join(' / ') ?? '–'} |`)
  return ['| target | goal | measured | | gateway CPU µs per operation | gateway loop delay p99 / max ms | CPU % (gateway / kafka / load / clients / others) | load average before |',
    '|---|---|---|---|---|---|---|---|', ...rows].join('\n')
}

function verdict (met: TargetVerdict['met']): string {
  if (met === undefined) return 'not measured'
  if (met === 'no target') return 'measured, no target'
  return met ? '**met**' : '**not met**'
}

export function markdown (results: BenchResults): string {
  const { machine, phases, settings } = results
  const lines: string[] = []
  lines.push('# kafka-notify benchmark', '')
  lines.push(`${results.settings.quick ? 'Quick' : 'Full'} run of \`${results.command}\` on ${results.startedAt.replace('T', ' ').slice(0, 16)} UTC, ${fmt(results.durationSeconds, 0)} s.`)
  lines.push(`Machine: ${machine.cpus} × ${machine.cpuModel}, ${fmt(machine.memoryBytes / GIB, 1)} GiB, open files ≤ ${machine.openFilesHardLimit}; ` +
    `**load average before the run ${machine.loadAverageBefore.join(' / ')}** (1 / 5 / 15 min; the machine is shared, so each target also shows the load average just before it was measured). ` +
    `Node ${machine.node}, Kafka ${machine.kafka} (one local KRaft node), kafkajs ${machine.kafkajs}. ` +
    `Gateway: ${results.gateway.runtime === 'dist' ? 'built `dist/server/main.js`' : results.gateway.runtime}, commit ${machine.commit}${machine.dirty ? ' with uncommitted changes' : ''}. ` +
    'Broker, gateway, load (autocannon / the record producer, each in a process of its own) and WebSocket clients all share this machine. ' +
    'CPU is in percent of one core (200 = both cores); `load` includes the bench orchestrator, `others` is the rest of the machine.', '')
  lines.push('## Targets', '',
    'Issue 18\'s: the figures of the Go peers measured beside kafka-notify on this machine on 2026-12-06 (the tutorial app, sarama + gin, for ingest and sequential; Centrifugo v6.9.1 for delivery and idle sockets). ' +
    '**Gateway CPU µs per operation**: the gateway\'s CPU time from the start of the figure until every frame it made arrived, over the follows accepted or the notifications delivered. ' +
    '**Loop delay**: the gateway\'s event-loop delay over the figure (`perf_hooks.monitorEventLoopDelay`, on /metrics as `nodejs_eventloop_lag_*`, reset at each scrape), with its sampling period taken out.', '',
    targetsTable(results.targets), '')
  if (results.errors.length > 0) lines.push('## Errors', '', ...results.errors.map((error) => `- ${error.split('\n')[0]}`), '')

  const sequential = phases.sequential
  if (sequential !== undefined) {
    const f = sequential.frame
    const a = sequential.ack
    lines.push('## Sequential: follow → frame, one at a time', '')
    lines.push(`${sequential.warmUp} warm-up follows, then ${sequential.count} measured, each sent once the previous one's 202 and frame arrived, over one keep-alive connection; ` +
      'the recipient\'s socket is in the same process, so both times come from one clock. ' +
      `POST → frame p50 / p90 / p99 / max: **${f === undefined ? '–' : [f.p50, f.p90, f.p99, f.max].map((value) => fmt(value)).join(' / ')} ms**; ` +
      `POST → 202: ${a === undefined ? '–' : [a.p50, a.p90, a.p99, a.max].map((value) => fmt(value)).join(' / ')} ms. ` +
      `${sequential.failed} failed, ${sequential.mismatched} mismatched. Gateway CPU per follow (warm-up included): ${micros(sequential.gatewayCpuPerFollowUs)} µs; ` +
      `loop delay p99 / max: ${sequential.loopDelay === undefined ? '–' : pair(sequential.loopDelay.p99Ms, sequential.loopDelay.maxMs)} ms. CPU %: ${cpu(sequential.cpu)}.`, '')
  }
  const ingest = phases.ingest
  if (ingest !== undefined) {
    lines.push('## Ingest: POST /api/follows, closed loop (autocannon)', '')
    lines.push(`autocannon, in a process of its own, with each connection sending its next follow when the previous one is answered, for ${fmt(settings.ingest.durationS, 0)} s per level ` +
      `after a ${settings.ingest.warmUp.durationS} s warm-up at ${settings.ingest.warmUp.connections} connections. Each request names another follower (bearer token) and one of ${fmt(ingest.recipients, 0)} connected followees. ` +
      `Delivery: ${ingest.deliveryCheck}. Latency bound: POST → 202 p99 < ${INGEST_P99_MS} ms. ` +
      '"not matched" frames are follows in flight when autocannon stopped (accepted, but their 202 never read): at most one per connection.', '')
    lines.push('| connections | accepted/s | autocannon req/s mean | POST → 202 p50 / p99 / max ms | follow → frame p50 / p99 ms | not 202 / errors | missing / doubled / seq gaps | not matched | gateway CPU µs per follow | gateway loop delay p99 / max ms | CPU % (gateway / kafka / load / clients / others) | load average before |')
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for (const level of ingest.levels) {
      lines.push(`| ${level.connections} | ${fmt(level.acceptedPerSecond, 0)} | ${fmt(level.autocannon.requestsPerSecond.mean, 0)} | ${triple(level.ack?.p50, level.ack?.p99, level.ack?.max)} | ${pair(level.frame?.p50, level.frame?.p99)} | ` +
        `${level.requests - level.accepted} / ${level.errors} | ${level.missing} / ${level.duplicates + level.seqRepeats} / ${level.seqGaps} | ${level.unexpected} | ${micros(level.gatewayCpuPerFollowUs)} | ` +
        `${level.loopDelay === undefined ? '–' : pair(level.loopDelay.p99Ms, level.loopDelay.maxMs)} | ${cpu(level.cpu)} | ${level.loadAverageBefore.join(' / ')} |`)
    }
    lines.push('')
  }
  const produce = phases.produce
  if (produce !== undefined) {
    lines.push('## Produce: Kafka → sockets at fixed rates', '')
    if (produce.skipped !== undefined) {
      lines.push(`Skipped: ${produce.skipped}.`, '')
    } else {
      lines.push(`Follow notifications produced straight to the topic (acks=-1) by a producer process of its own, open loop at each rate for ${fmt(settings.produce.durationMs / 1000, 0)} s, ` +
        `to ${fmt(produce.recipients, 0)} connected users, after a warm-up at ${fmt(settings.produce.warmUp.rate, 0)}/s. Latency: from the producer's send call (its time taken just before the send, on the machine's monotonic clock) ` +
        'to the frame read in a WebSocket client process. Backlog: records sent and not yet received, sampled every 100 ms from those times; its growth is the trend over the second half. ' +
        `A step is sustained with everything sent and acked, every record's frame once, seqs contiguous, p99 < ${produce.p99BoundMs} ms and the backlog growing by less than ${produce.p99BoundMs} ms' worth of records. ` +
        `Highest sustained: **${produce.maxSustained === undefined ? 'none' : `${fmt(produce.maxSustained, 0)} records/s`}**.${produce.producerLimited ? ' The producer fell behind its schedule at the last step: it, not the gateway, was the limit.' : ''}`, '')
      lines.push(...produceTable(produce.steps))
      lines.push('', '![produce → frame latency per rate](latency.svg)', '', '![produce → frame p99 against rate, beside the Go peers](p99-vs-rate.svg)', '')
    }
  }
  const sse = phases.sse
  if (sse !== undefined) {
    lines.push('## SSE: Kafka → event streams at fixed rates', '')
    if (sse.skipped !== undefined) {
      lines.push(`Skipped: ${sse.skipped}.`, '')
    } else {
      lines.push(`The produce phase over Server-Sent Events: the WebSocket clients are closed, the same ${fmt(sse.recipients, 0)} users each open an event stream (\`GET /sse\`, bearer header) ` +
        `from client processes of their own${sse.streams === undefined ? '' : ` (${fmt(sse.streams.connected, 0)} open in ${fmt(sse.streams.elapsedMs / 1000, 1)} s)`}, ` +
        `and records are produced the same way at each rate for ${fmt(settings.sse.durationMs / 1000, 0)} s, after a warm-up at ${fmt(settings.sse.warmUp.rate, 0)}/s. ` +
        'Latency: the producer\'s send → the event read in a client process; delivery (every record\'s event once, seqs contiguous), backlog, verdict and CPU as in the produce phase. ' +
        'No target of its own: the targets table shows each figure beside the WebSocket one at the same rate.', '')
      lines.push(...produceTable(sse.steps), '')
    }
  }
  const publish = phases.publish
  if (publish !== undefined) {
    lines.push('## Publish: POST /api/notifications, a backend to 1, 10 and 100 users a request', '')
    lines.push(`A backend's requests with a service token, from a sender process of its own, open loop for ${fmt(settings.publish.durationMs / 1000, 0)} s per step ` +
      `(after a ${fmt(settings.publish.warmUp.durationMs / 1000, 0)} s warm-up at ${fmt(settings.publish.warmUp.rate, 0)}/s), each request to the next recipients of ${fmt(publish.recipients, 0)} connected users. ` +
      `Rates count notifications (requests/s × recipients per request): ${fmt(settings.publish.latencyRate, 0)}/s for publish → frame latency, ${fmt(settings.publish.peakRate, 0)}/s offered for what the gateway accepts ` +
      '(requests due while 512 are out are skipped). Times are per notification, from the request written to its 202 and to its frame at the recipient\'s socket. ' +
      'Gateway CPU per notification: its CPU time over the step divided by the notifications accepted.', '')
    lines.push('| recipients per request | offered/s | accepted/s | gateway CPU µs per notification | POST → 202 p50 / p99 ms | publish → frame p50 / p99 ms | requests failed / skipped | missing / doubled / seq gaps | CPU % (gateway / kafka / load / clients / others) | load average before |')
    lines.push('|---|---|---|---|---|---|---|---|---|---|')
    for (const step of publish.steps) {
      lines.push(`| ${step.recipientsPerCall} | ${fmt(step.rate, 0)} | ${fmt(step.acceptedPerSecond, 0)} | ${micros(step.gatewayCpuPerNotificationUs)} | ${pair(step.ack?.p50, step.ack?.p99)} | ` +
        `${pair(step.frame?.p50, step.frame?.p99)} | ${step.requests.failed} / ${step.requests.skipped} | ${step.missing} / ${step.duplicates} / ${step.seqGaps} | ${cpu(step.cpu)} | ${step.loadAverageBefore.join(' / ')} |`)
    }
    lines.push('')
  }
  const state = phases.state
  if (state !== undefined) {
    lines.push('## Feed state: notifications with state changes alongside, and grouped', '')
    lines.push(`Notifications published one recipient a request at ${fmt(settings.state.rate, 0)}/s to ${fmt(state.recipients, 0)} connected users for ${fmt(settings.state.durationMs / 1000, 0)} s a step: plain, ` +
      `with a group key (each joins its recipient's group), and plain with ${fmt(settings.state.marksRate, 0)} state changes/s alongside ("mark all read" and "clear all", alternately, each user in turn). ` +
      `Gateway CPU per state change: the third step's gateway CPU time less the first's, over the changes made: **${state.gatewayCpuPerChangeUs === undefined ? '–' : fmt(state.gatewayCpuPerChangeUs, 1)} µs**.`, '')
    const { settle } = state
    lines.push('Before the steps, each recipient\'s feed was marked all read, then cleared, once (the phases before left every feed long and all unread; the measured changes then move what arrived since, as for a user who uses the buttons): ' +
      `${fmt(settle.settled, 0)} of ${fmt(settle.users, 0)} feeds (${fmt(settle.failed, 0)} failed), ${fmt(settle.meanFeedLength, 1)} notifications each on average, in ${fmt(settle.seconds, 2)} s; ` +
      `gateway CPU per feed (both changes): ${settle.gatewayCpuPerFeedUs === undefined ? '–' : `${fmt(settle.gatewayCpuPerFeedUs, 0)} µs`}.`, '')
    lines.push('| step | accepted/s | gateway CPU µs per notification | publish → frame p50 / p99 ms | state changes sent / made / failed / skipped | missing / doubled / seq gaps | CPU % (gateway / kafka / load / clients / others) | load average before |')
    lines.push('|---|---|---|---|---|---|---|---|')
    for (const { step, marks } of state.steps) {
      lines.push(`| ${step.label} | ${fmt(step.acceptedPerSecond, 0)} | ${step.gatewayCpuPerNotificationUs === undefined ? '–' : fmt(step.gatewayCpuPerNotificationUs, 1)} | ${pair(step.frame?.p50, step.frame?.p99)} | ` +
        `${marks === undefined ? '–' : `${marks.sent} / ${marks.changes} / ${marks.failed} / ${marks.skipped}`} | ${step.missing} / ${step.duplicates} / ${step.seqGaps} | ${cpu(step.cpu)} | ${step.loadAverageBefore.join(' / ')} |`)
    }
    lines.push('')
  }
  if (phases.gateways !== undefined) lines.push(...gatewaysSection(phases.gateways, settings), '')
  const connections = phases.connections
  if (connections !== undefined) {
    lines.push('## Idle connections', '')
    if (connections.skipped !== undefined) {
      lines.push(`Skipped: ${connections.skipped}.`, '')
    } else {
      lines.push(`Gateway RSS (/proc VmRSS) before any connection: ${fmt((connections.baselineRssBytes ?? 0) / 1024 ** 2, 1)} MiB. Each level read after one heartbeat period (${connections.heartbeatMs} ms) with every socket idle.`, '')
      lines.push('| connections | gateway reports | failed | RSS MiB | KiB per connection | opened in s | gateway loop delay p99 / max ms over the idle period |')
      lines.push('|---|---|---|---|---|---|---|')
      for (const level of connections.levels) {
        lines.push(`| ${fmt(level.connected, 0)} | ${level.gatewayReported ?? '?'} | ${level.failed} | ${fmt(level.rssBytes / 1024 ** 2, 1)} | ${fmt(level.bytesPerConnection / 1024, 2)} | ${level.connectSeconds} | ` +
          `${level.loopDelay === undefined ? '–' : pair(level.loopDelay.p99Ms, level.loopDelay.maxMs)} |`)
      }
      lines.push('')
    }
  }
  const catchUp = phases.catchUp
  if (catchUp !== undefined) {
    lines.push('## Catch-up', '')
    if (catchUp.skipped !== undefined) {
      lines.push(`Skipped: ${catchUp.skipped}.`, '')
    } else {
      lines.push(`A user offline while ${fmt(catchUp.missed, 0)} notifications are produced connects with \`since=<cursor>\`; time from the socket opening to \`synced\`. ` +
        `Median ${catchUp.openToSynced === undefined ? '?' : fmt(catchUp.openToSynced.p50)} ms over ${catchUp.runs.length} run(s): ` +
        catchUp.runs.map((run) => `${fmt(run.openToSyncedMs)} ms (${run.replayed} replayed${run.missing + run.duplicates + run.outOfOrder > 0 ? `, ${run.missing} missing, ${run.duplicates} duplicates, ${run.outOfOrder} out of order` : ''})`).join(', ') + '.', '')
    }
  }
  if (results.profile !== undefined) {
    lines.push('## Gateway CPU profile (self time)', '')
    lines.push(`\`${results.profile.file}\`, ${results.profile.seconds} s, idle ${results.profile.idlePercent}%; self time as a share of the busy time.`, '')
    lines.push('| function | where | self % of busy |', '|---|---|---|')
    for (const entry of results.profile.top.slice(0, 15)) lines.push(`| ${entry.function} | ${entry.location} | ${entry.selfPercent} |`)
    lines.push('')
  }
  lines.push('Raw figures: [latest.json](latest.json).', '')
  return lines.join('\n')
}

function gatewaysSection (result: GatewaysResult, settings: BenchResults['settings']): string[] {
  const lines = ['## Two gateways (shared PostgreSQL + Redis) vs one (SQLite)', '']
  if (result.skipped !== undefined) return [...lines, `Skipped: ${result.skipped}.`]
  const { gateways } = settings
  const frames = (result.recipients + result.multiTabUsers * (result.gateways - 1)) / result.recipients
  lines.push(`**shared**: ${result.gateways} gateways with one consumer group on a topic of their own (partitions per gateway: ${result.assignment.map((partitions) => partitions.join(',')).join(' / ')}), ` +
    'sharing a PostgreSQL inbox (DATABASE_URL) and a Redis fan-out (REDIS_URL); **sqlite**: the stack\'s one gateway with its SQLite inbox. Both run on this machine at once, measured in turn step by step. ' +
    `Both hold the same ${fmt(result.tabsPerGateway.reduce((total, tabs) => total + tabs, 0), 0)} tabs of ${fmt(result.recipients, 0)} users: one tab each, on the gateways in turn (${result.tabsPerGateway.map((tabs) => fmt(tabs, 0)).join(' / ')} tabs per shared gateway), ` +
    `and ${fmt(result.multiTabUsers, 0)} users with a tab on every gateway, so a record makes ${fmt(frames)} frames on average (all on the one gateway in the SQLite setup). ` +
    `Records go straight to Kafka (acks=-1) from a producer process per setup, open loop: ${gateways.latencyRates.map((rate) => `${fmt(rate, 0)}/s`).join(' and ')} for ${fmt(gateways.durationMs / 1000, 0)} s, ` +
    `then a burst of ${fmt(gateways.burst.records, 0)} records sent as fast as the producer goes, after a warm-up of each setup at ${fmt(gateways.warmUp.rate, 0)}/s. ` +
    'Latency: producer\'s send → frame read in a client process, over every tab\'s frame; frames/s: frames received from the first send to the last frame. ' +
    `Where the time goes: **Kafka ack** is send → the broker's ack; **Redis publish** is send → the consuming gateway's publish (after its PostgreSQL commit), seen by a subscriber of its own on ${fmt(result.tapUsers, 0)} users' channels; ` +
    'the rest, to the frame, is Redis → the gateway holding the tab → the socket → the client. In the SQLite setup the gateway that consumes is the one that writes the frame, without the Redis hop. ' +
    'missing / doubled / gaps are per tab (each tab must get each of its user\'s records once, with contiguous seqs). ' +
    'CPU % per process: each gateway (`gateway` is the SQLite one), Kafka, PostgreSQL (postmaster and backends), Redis, `load` (the producers and the orchestrator), `clients`, `others`; the setup not measured idles meanwhile.', '')
  lines.push('**Inbox append** is each gateway\'s `notify_inbox_append_seconds` (one observation per consumed batch\'s inbox transaction: its rows, unread counters and Kafka positions; ' +
    'PostgreSQL\'s commit in the shared setup, SQLite\'s in the other), the difference of a /metrics scrape before and after the step: batches, mean, and p50 / p99 **estimated** from the bucket counts ' +
    '(linear inside the bucket, as Prometheus\'s histogram_quantile; buckets 0.5, 1, 2.5, 5, 10, 25 ms …, so an estimate is only as fine as its bucket, and one in the first bucket is interpolated from 0).', '')
  lines.push('| setup | rate | frames/s | produce → frame p50 / p99 / max ms | → Kafka ack p50 / p99 | → Redis publish p50 / p99 | missing / doubled / seq gaps | inbox append per gateway: batches, mean / ≈p50 / ≈p99 ms | gateway loop delay p99 ms | CPU % per process | load average before |')
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|')
  for (const step of result.steps) {
    lines.push(`| ${step.setup} | ${step.kind === 'burst' ? `burst of ${fmt(step.sent, 0)} (${fmt(step.producedPerSecond, 0)}/s sent)` : `${fmt(step.rate, 0)}/s`} | ${fmt(step.framesPerSecond, 0)} | ` +
      `${triple(step.frame?.p50, step.frame?.p99, step.frame?.max)} | ${pair(step.kafkaAck?.p50, step.kafkaAck?.p99)} | ${pair(step.publish?.p50, step.publish?.p99)} | ` +
      `${deliveryCells(step)} |`)
  }
  const first = result.follows[0]
  if (first === undefined) return lines
  const { follows } = gateways
  lines.push('', `**Follow → frame**: POST /api/follows from a sender process of its own, open loop at ${follows.rates.map((rate) => `${fmt(rate, 0)}/s`).join(' and ')} for ${fmt(follows.durationMs / 1000, 0)} s ` +
    `(after a warm-up of each setup at ${fmt(follows.warmUp.rate, 0)}/s), over the setup's gateways in turn (the SQLite setup: its one gateway), each from one of the never-connected followers to one of the users with tabs, ` +
    `over keep-alive connections, at most ${first.maxInFlight} requests out at once: a follow due while ${first.maxInFlight} are out is **skipped** (counted, never sent). ` +
    'Latency: the request\'s write (timed in the sender) → its frame read in a client process, over every tab of the followee, matched by the 202\'s notification id; POST → 202 in the sender. ' +
    `**failed** is another status than 202 or no answer (within ${fmt(first.requestTimeoutMs / 1000, 0)} s, or still out when the step's drain ended); missing / doubled / gaps are over the accepted follows' frames per tab. ` +
    'The gateways run with RATE_LIMIT_PER_USER=0 and RATE_LIMIT_PER_IP=0. CPU `follows` is the sender.', '')
  lines.push('| setup | rate | accepted/s | accepted / failed / skipped | POST → 202 p50 / p99 ms | follow → frame p50 / p99 / max ms | → Redis publish p50 / p99 | missing / doubled / seq gaps | inbox append per gateway: batches, mean / ≈p50 / ≈p99 ms | gateway loop delay p99 ms | CPU % per process | load average before |')
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const step of result.follows) {
    lines.push(`| ${step.setup} | ${fmt(step.rate, 0)}/s | ${fmt(step.acceptedPerSecond, 0)} | ${fmt(step.accepted, 0)} / ${fmt(step.failed, 0)} / ${fmt(step.skipped, 0)} | ` +
      `${pair(step.ack?.p50, step.ack?.p99)} | ${triple(step.frame?.p50, step.frame?.p99, step.frame?.max)} | ${pair(step.publish?.p50, step.publish?.p99)} | ${deliveryCells(step)} |`)
  }
  return lines
}

/** The cells every gateways-phase table ends with: delivery, inbox appends, loop delay, CPU, load. */
function deliveryCells (step: Delivery): string {
  const appends = step.inboxAppend.map((append, k) => `${step.gateways[k]}: ${append === undefined
    ? '–'
    : `${fmt(append.batches, 0)}, ${[append.meanMs, append.p50Ms, append.p99Ms].map((ms) => ms === undefined ? '–' : fmt(ms)).join(' / ')}`}`)
  return `${step.missing} / ${step.duplicates + step.seqRepeats} / ${step.seqGaps}${step.framesReceived < step.framesExpected ? ` (${fmt(step.framesReceived, 0)} of ${fmt(step.framesExpected, 0)} frames)` : ''}` +
    `${step.unexpected > 0 ? `, ${fmt(step.unexpected, 0)} unexpected` : ''} | ${appends.join('; ')} | ` +
    `${step.loopDelay.map((delay) => delay === undefined ? '–' : fmt(delay.p99Ms)).join(' / ')} | ${Object.entries(step.cpu).map(([name, percent]) => `${name} ${percent}`).join(', ')} | ${step.loadAverageBefore.join(' / ')}`
}

/** The produce phase's table (and the sse phase's): one row per rate. */
function produceTable (steps: readonly ProduceStep[]): string[] {
  const lines = ['| records/s | produced/s | p50 | p90 | p99 | p99.9 | max | missing / doubled / seq gaps | backlog mean / growth | producer lag p99 ms | verdict | gateway CPU µs per delivered | gateway loop delay p99 / max ms | CPU % (gateway / kafka / load / clients / others) | load average before |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  for (const step of steps) {
    const f = step.frame
    const cells = f === undefined ? ['–', '–', '–', '–', '–'] : [f.p50, f.p90, f.p99, f.p999, f.max].map((value) => fmt(value))
    lines.push(`| ${fmt(step.rate, 0)} | ${fmt(step.producedPerSecond, 0)} | ${cells.join(' | ')} | ${step.missing} / ${step.duplicates + step.seqRepeats} / ${step.seqGaps} | ` +
      `${fmt(step.backlog.meanRecords, 0)} / ${fmt(step.backlog.growthRecords, 0)} | ${fmt(step.scheduleLag?.p99 ?? Number.NaN)} | ${step.verdict} | ${micros(step.gatewayCpuPerDeliveredUs)} | ` +
      `${step.loopDelay === undefined ? '–' : pair(step.loopDelay.p99Ms, step.loopDelay.maxMs)} | ${cpu(step.cpu)} | ${step.loadAverageBefore.join(' / ')} |`)
  }
  return lines
}

function micros (value: number | undefined): string {
  return value === undefined ? '–' : fmt(value, 1)
}

function pair (a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined ? '–' : `${fmt(a)} / ${fmt(b)}`
}

function triple (a: number | undefined, b: number | undefined, c: number | undefined): string {
  return a === undefined || b === undefined || c === undefined ? '–' : `${fmt(a)} / ${fmt(b)} / ${fmt(c)}`
}

function cpu (busy: Record<string, number>): string {
  return [busy.gateway, busy.kafka, busy.load, busy.clients, busy.others].map((value) => value ?? '?').join(' / ')
}
