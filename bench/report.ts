import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Step } from './phases/drive.js'
import { resultsDir } from './paths.js'
import { fmt, type BenchResults, type TargetVerdict } from './results.js'
import { latencySvg } from './svg.js'

const GIB = 1024 ** 3

/** Writes latest.json, latest.md and latency.svg; each appears whole or not at all. */
export async function writeReport (results: BenchResults): Promise<string[]> {
  await mkdir(resultsDir, { recursive: true })
  const steps = plottedSteps(results)
  const files: Array<[string, string]> = [
    ['latest.json', JSON.stringify(results, null, 2) + '\n'],
    ['latest.md', markdown(results)]
  ]
  if (steps.length > 0) files.push(['latency.svg', latencySvg(steps, `kafka-notify: follow → frame latency (${results.settings.quick ? 'quick run' : 'full run'}, ${results.startedAt.slice(0, 10)})`)])
  const written: string[] = []
  for (const [name, text] of files) {
    const path = join(resultsDir, name)
    await writeFile(`${path}.tmp`, text)
    await rename(`${path}.tmp`, path)
    written.push(path)
  }
  return written
}

/** The latency phase's rates, then the ingest steps at rates it did not cover. */
function plottedSteps (results: BenchResults): Step[] {
  const latency = results.phases.latency?.steps ?? []
  const rates = new Set(latency.map((step) => step.rate))
  const ingest = (results.phases.ingest?.steps ?? []).filter((step) => !rates.has(step.rate))
  return [...latency, ...ingest].sort((a, b) => a.rate - b.rate)
}

export function targetsTable (targets: readonly TargetVerdict[]): string {
  const rows = targets.map((target) => `| ${target.name} | ${target.goal} | ${target.measured} | ${verdict(target.met)} |`)
  return ['| target | goal | measured | |', '|---|---|---|---|', ...rows].join('\n')
}

function verdict (met: boolean | undefined): string {
  if (met === undefined) return 'not measured'
  return met ? '**met**' : '**not met**'
}

export function markdown (results: BenchResults): string {
  const { machine, phases, settings } = results
  const lines: string[] = []
  lines.push('# kafka-notify benchmark', '')
  lines.push(`${results.settings.quick ? 'Quick' : 'Full'} run of \`${results.command}\` on ${results.startedAt.replace('T', ' ').slice(0, 16)} UTC, ${fmt(results.durationSeconds, 0)} s.`)
  lines.push(`Machine: ${machine.cpus} × ${machine.cpuModel}, ${fmt(machine.memoryBytes / GIB, 1)} GiB, open files ≤ ${machine.openFilesHardLimit}; ` +
    `load average before the run ${machine.loadAverageBefore.join(' / ')}. Node ${machine.node}, Kafka ${machine.kafka} (one local KRaft node), kafkajs ${machine.kafkajs}. ` +
    `Gateway: ${results.gateway.runtime === 'dist' ? 'built `dist/server/main.js`' : results.gateway.runtime}, commit ${machine.commit}${machine.dirty ? ' with uncommitted changes' : ''}. ` +
    'Broker, gateway, load generator and WebSocket clients all share this machine.', '')
  lines.push('## Targets', '', targetsTable(results.targets), '')
  if (results.errors.length > 0) lines.push('## Errors', '', ...results.errors.map((error) => `- ${error.split('\n')[0]}`), '')

  const latency = phases.latency
  if (latency !== undefined) {
    lines.push('## Latency: follow → frame', '')
    lines.push(`Open-loop POST /api/follows to ${fmt(latency.recipients, 0)} connected users, after a warm-up of ${fmt(latency.warmup.sent, 0)} follows at ${fmt(latency.warmup.rate, 0)}/s. ` +
      'Time from sending the POST to receiving the notification frame, in milliseconds.', '')
    lines.push(stepTable(latency.steps), '', '![follow → frame latency per rate](latency.svg)', '')
  }
  const ingest = phases.ingest
  if (ingest !== undefined) {
    lines.push('## Ingest', '')
    lines.push(`Offered rate stepped up for ${fmt(settings.ingest.durationMs / 1000, 0)} s each until a step was not sustained (every follow accepted, ≥ 95% of the offered rate, POST → 202 p99 < ${ingest.p99BoundMs} ms). ` +
      `Highest sustained: **${ingest.maxSustained === undefined ? 'none' : `${fmt(ingest.maxSustained, 0)} follows/s`}**; with the frames keeping up as well (all delivered, follow → frame p99 < ${ingest.p99BoundMs} ms): ${ingest.maxEndToEnd === undefined ? 'none' : `${fmt(ingest.maxEndToEnd, 0)} follows/s`}.` +
      `${ingest.generatorLimited ? ' The load generator fell behind its schedule at the last step: it, not the gateway, was the limit.' : ''}`, '')
    lines.push('| offered/s | accepted/s | POST → 202 p50 / p99 ms | follow → frame p50 / p99 ms | not accepted | verdict | gateway loop delay p99 / max ms | CPU % (gateway / kafka / load / clients / others) |')
    lines.push('|---|---|---|---|---|---|---|---|')
    for (const step of ingest.steps) {
      lines.push(`| ${fmt(step.rate, 0)} | ${fmt(step.acceptedPerSecond, 0)} | ${pair(step.ack?.p50, step.ack?.p99)} | ${pair(step.frame?.p50, step.frame?.p99)} | ` +
        `${step.sent - step.accepted} | ${step.verdict} | ${step.loopDelay === undefined ? '–' : `${fmt(step.loopDelay.p99Ms)} / ${fmt(step.loopDelay.maxMs)}`} | ${cpu(step.cpu)} |`)
    }
    lines.push('')
  }
  const delivery = phases.delivery
  if (delivery !== undefined) {
    lines.push('## Delivery: Kafka → sockets', '')
    if (delivery.skipped !== undefined) {
      lines.push(`Skipped: ${delivery.skipped}.`, '')
    } else {
      lines.push(`${fmt(delivery.records, 0)} follow notifications produced straight to Kafka in batches of ${settings.delivery.batchSize} for ${fmt(delivery.recipients, 0)} connected users` +
        `${delivery.mode === 'backlog' ? ` (${fmt(delivery.producedWhilePaused, 0)} of them while the gateway was paused with SIGSTOP, so it drained a backlog)` : ' while the gateway consumed'}. ` +
        `**${fmt(delivery.perSecond, 0)} notifications/s**: ${fmt(delivery.delivered, 0)} frames in ${fmt(delivery.seconds, 2)} s from first to last; ` +
        `${delivery.missing} missing, ${delivery.duplicates} duplicates. CPU % (gateway / kafka / load / clients / others): ${cpu(delivery.cpu)}.`, '')
    }
  }
  const connections = phases.connections
  if (connections !== undefined) {
    lines.push('## Idle connections', '')
    if (connections.skipped !== undefined) {
      lines.push(`Skipped: ${connections.skipped}.`, '')
    } else {
      lines.push(`Gateway RSS (/proc VmRSS) before any connection: ${fmt((connections.baselineRssBytes ?? 0) / 1024 ** 2, 1)} MiB. Each level read after one heartbeat period (${connections.heartbeatMs} ms) with every socket idle.`, '')
      lines.push('| connections | gateway reports | failed | RSS MiB | KiB per connection | opened in s |')
      lines.push('|---|---|---|---|---|---|')
      for (const level of connections.levels) {
        lines.push(`| ${fmt(level.connected, 0)} | ${level.gatewayReported ?? '?'} | ${level.failed} | ${fmt(level.rssBytes / 1024 ** 2, 1)} | ${fmt(level.bytesPerConnection / 1024, 2)} | ${level.connectSeconds} |`)
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

function stepTable (steps: readonly Step[]): string {
  const rows = steps.map((step) => {
    const f = step.frame
    const cells = f === undefined ? ['–', '–', '–', '–', '–'] : [f.p50, f.p90, f.p99, f.p999, f.max].map((value) => fmt(value))
    return `| ${fmt(step.rate, 0)} | ${fmt(step.accepted, 0)} | ${cells.join(' | ')} | ${pair(step.ack?.p50, step.ack?.p99)} | ${step.missing} / ${step.duplicates} | ` +
      `${step.loopDelay === undefined ? '–' : `${fmt(step.loopDelay.p99Ms)} / ${fmt(step.loopDelay.maxMs)}`} | ${cpu(step.cpu)} |`
  })
  return [
    '| follows/s | frames | p50 | p90 | p99 | p99.9 | max | POST → 202 p50 / p99 | missing / duplicate | gateway loop delay p99 / max | CPU % (gateway / kafka / load / clients / others) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows
  ].join('\n')
}

function pair (a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined ? '–' : `${fmt(a)} / ${fmt(b)}`
}

function cpu (busy: Record<string, number>): string {
  return [busy.gateway, busy.kafka, busy.loadGenerator, busy.wsClients, busy.others].map((value) => value ?? '?').join(' / ')
}
