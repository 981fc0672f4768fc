import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cleanup } from './cleanup.js'
import { assignRoles, type BenchContext } from './context.js'
import { ClientFleet, SOCKETS_PER_PROCESS } from './fleet.js'
import type { HttpLoadApi } from './http-load.js'
import { ChildWorker } from './ipc.js'
import { describeMachine } from './machine.js'
import { benchDir } from './paths.js'
import { catchUpPhase } from './phases/catch-up.js'
import { connectionsPhase } from './phases/connections.js'
import { gatewaysPhase } from './phases/gateways.js'
import { ingestPhase } from './phases/ingest.js'
import { producePhase } from './phases/produce.js'
import { publishPhase } from './phases/publish.js'
import { ssePhase } from './phases/sse.js'
import { statePhase } from './phases/state.js'
import { sequentialPhase } from './phases/sequential.js'
import { summarizeProfile, type ProfileSummary } from './profile.js'
import { Progress } from './progress.js'
import { writeReport, targetsTable } from './report.js'
import { judgeTargets, type BenchResults } from './results.js'
import { parseArgs, type PhaseName } from './settings.js'
import { startStack } from './stack.js'

/** Phases that open their users' feeds themselves: the WebSocket fleet is not connected for them. */
const OWN_CLIENTS: readonly PhaseName[] = ['connections', 'sse', 'gateways']

/**
 * `npm run bench`: starts a broker and a gateway (or uses the ones given), opens the WebSocket
 * clients and the HTTP load process, runs the phases in order, and writes bench/results/.
 */
async function main (): Promise<number> {
  const settings = parseArgs(process.argv.slice(2))
  const progress = new Progress()
  const cleanup = new Cleanup()
  const machine = describeMachine()
  const startedAt = new Date()

  let stopping = false
  const stop = (why: string, code: number): void => {
    if (stopping) {
      process.stderr.write('bench: stopping already; press Ctrl-C again to leave at once\n')
      process.once('SIGINT', () => process.exit(130))
      return
    }
    stopping = true
    progress.log(`${why}: stopping and cleaning up…`)
    void cleanup.run().finally(() => process.exit(code))
  }
  process.on('SIGINT', () => stop('interrupted', 130))
  process.on('SIGTERM', () => stop('terminated', 143))
  const runTimer = setTimeout(() => stop(`the run took longer than its bound of ${settings.runTimeoutMs / 60_000} min`, 1), settings.runTimeoutMs)

  progress.log(`kafka-notify bench (${settings.quick ? 'quick' : 'full'}): ${settings.phases.join(', ')}; ` +
    `${machine.cpus} CPUs, load average ${machine.loadAverageBefore.join(' ')}`)
  const errors: string[] = []
  const phases: BenchResults['phases'] = {}
  let profile: ProfileSummary | undefined
  try {
    const profileDir = settings.profile ? await mkdtemp(join(tmpdir(), 'kafka-notify-bench-profile-')) : ''
    const stack = await startStack(settings, cleanup, (line) => progress.log(line), profileDir)
    progress.log(`Gateway at ${stack.url} (${stack.runtime}${stack.gatewayPid === undefined ? '' : `, pid ${stack.gatewayPid}`}), Kafka at ${stack.brokers?.join(',') ?? '(not given)'}`)
    const roles = assignRoles(stack.users, settings)

    const mostSockets = Math.max(roles.recipients.length, ...(settings.phases.includes('connections') ? settings.connectionLevels : [0]))
    const fleet = await ClientFleet.start(Math.max(2, Math.ceil(mostSockets / SOCKETS_PER_PROCESS)), stack.url, stack.tokens, settings.connectConcurrency)
    cleanup.add('WebSocket clients', () => fleet.stop())
    const http = new ChildWorker<HttpLoadApi>(join(benchDir, 'http-load.ts'), 'http-load')
    cleanup.add('HTTP load', () => http.stop())
    await http.call('init', { url: stack.url, tokens: stack.tokens, followers: roles.followers.map((user) => user.id), followees: roles.recipients.map((user) => user.id) }, 60_000)
    const context: BenchContext = { settings, stack, roles, fleet, http, progress, cleanup }

    const run: Record<PhaseName, () => Promise<void>> = {
      connections: async () => { phases.connections = await connectionsPhase(context) },
      sequential: async () => { phases.sequential = await sequentialPhase(context) },
      ingest: async () => { phases.ingest = await ingestPhase(context) },
      produce: async () => { phases.produce = await producePhase(context) },
      sse: async () => { phases.sse = await ssePhase(context) },
      publish: async () => { phases.publish = await publishPhase(context) },
      state: async () => { phases.state = await statePhase(context) },
      'catch-up': async () => { phases.catchUp = await catchUpPhase(context) },
      gateways: async () => { phases.gateways = await gatewaysPhase(context) }
    }
    for (const phase of settings.phases) {
      if (stopping) break
      // Connections opens sockets of its own; sse and gateways hold their users' feeds in fleets of their own.
      if (!OWN_CLIENTS.includes(phase)) {
        const opened = await fleet.connect(roles.recipients.map((user) => user.id), 120_000)
        if (opened.failed > 0) progress.log(`${opened.failed} recipients could not connect: ${opened.errors.join('; ')}`)
      }
      progress.log(`— ${phase} —`)
      try {
        await run[phase]()
      } catch (error) {
        if (stopping) break
        errors.push(`${phase}: ${(error as Error).stack ?? String(error)}`)
        progress.log(`${phase} failed: ${(error as Error).message}`)
      }
      if (stack.gateway?.status !== undefined) {
        errors.push(`the gateway exited (${stack.gateway.status}) during ${phase}:\n${stack.gateway.tail()}`)
        progress.log(`the gateway exited during ${phase}; stopping:\n${stack.gateway.tail()}`)
        break
      }
    }

    if (stopping) return await exitByHandler()
    if (settings.profile && stack.gateway !== undefined) {
      await http.stop()
      await fleet.stop()
      await stack.gateway.stop()
      profile = await summarizeProfile(profileDir)
    }

    const finishedAt = new Date()
    const results: BenchResults = {
      schema: 2,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationSeconds: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      machine,
      settings,
      gateway: { runtime: stack.runtime, url: stack.url, env: stack.gatewayEnv, logLevels: stack.gateway?.logLevels ?? {} },
      phases,
      targets: judgeTargets(phases),
      errors,
      ...(profile === undefined ? {} : { profile })
    }
    const written = await writeReport(results)
    progress.log(`\n${targetsTable(results.targets)}\n`)
    if (profile !== undefined) {
      progress.log(`Gateway CPU profile ${profile.file} (${profile.seconds} s, idle ${profile.idlePercent}%), hottest self time as a share of busy time:\n` +
        profile.top.slice(0, 15).map((entry) => `  ${String(entry.selfPercent).padStart(5)}%  ${entry.function}  ${entry.location}`).join('\n') +
        '\nBy owner:\n' + profile.byOwner.map((entry) => `  ${String(entry.selfPercent).padStart(5)}%  ${entry.owner}`).join('\n'))
    }
    progress.log(`Wrote ${written.join(', ')}`)
  } catch (error) {
    if (stopping) return await exitByHandler()
    errors.push((error as Error).stack ?? String(error))
    progress.log(`bench failed: ${(error as Error).stack ?? String(error)}`)
  } finally {
    clearTimeout(runTimer)
    if (!stopping) {
      progress.log('Cleaning up…')
      await cleanup.run()
    }
  }
  return errors.length === 0 ? 0 : 1
}

/** Interrupted: the signal handler cleans up and exits the process; a half run writes no results. */
async function exitByHandler (): Promise<never> {
  return await new Promise<never>(() => {})
}

main().then((code) => process.exit(code), (error: unknown) => {
  process.stderr.write(`bench: ${String(error)}\n`)
  process.exit(1)
})
