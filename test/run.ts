// `npm test`: runs tap against KAFKA_BROKERS, or, when it is unset, against one local broker
// started for the whole run in a fresh temporary directory. Arguments go to tap. (tap's
// config excludes this file: it is the runner, not a test.)
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { constants, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LocalKafkaError, startLocalKafka, type LocalKafka } from '../local/kafka/launcher.js'

const tapBin = fileURLToPath(new URL('../node_modules/.bin/tap', import.meta.url))
let interrupted = false

// The first signal stops the run cleanly (tap, then the broker); a second one exits at once,
// and the broker's watchdog still stops the JVM.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(128 + constants.signals[signal])
    interrupted = true
  })
}

process.exitCode = await main()

async function main (): Promise<number> {
  if (process.env.KAFKA_BROKERS) return await runTap(process.env)

  const dataDir = await mkdtemp(join(tmpdir(), 'kafka-notify-test-'))
  let kafka: LocalKafka | undefined
  try {
    kafka = await startLocalKafka({ dataDir, log: line => { console.error(`[test] ${line}`) } })
    if (interrupted) return 130
    return await runTap({ ...process.env, KAFKA_BROKERS: kafka.brokers.join(',') })
  } catch (err) {
    if (!(err instanceof LocalKafkaError)) throw err
    console.error(`[test] ${err.code}: ${err.message}`)
    return 1
  } finally {
    await kafka?.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

async function runTap (env: NodeJS.ProcessEnv): Promise<number> {
  const tap = spawn(tapBin, process.argv.slice(2), { stdio: 'inherit', env })
  const forward = (signal: NodeJS.Signals): void => { tap.kill(signal) }
  process.on('SIGINT', forward).on('SIGTERM', forward)
  try {
    return await new Promise<number>((resolve, reject) => {
      tap.once('error', reject)
      tap.once('exit', (code, signal) => { resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])) })
    })
  } finally {
    process.off('SIGINT', forward).off('SIGTERM', forward)
  }
}
