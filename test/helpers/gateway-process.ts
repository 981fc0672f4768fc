import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { gatewayCommand } from '../../local/gateway-process.js'
import { tempDir, type TestContext } from './gateway.js'

export interface GatewayProcess {
  url: string
  child: ChildProcess
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>
  /** Every log line so far (pino JSON). */
  logs: string[]
}

const START_BOUND_MS = 120_000

/**
 * Runs server/main.ts as a real process (as `npm start` would, through tsx), for the tests that
 * kill it. Resolves once it logged that it listens.
 */
export async function spawnGateway (t: TestContext, env: Record<string, string>): Promise<GatewayProcess> {
  // Run from a directory of its own: main.ts reads a .env from its working directory, and a
  // developer's .env must not change what the tests run.
  const [file, args] = gatewayCommand()
  const child = spawn(file, args, {
    cwd: tempDir(t, 'kafka-notify-cwd-'),
    env: { ...process.env, ...env, LOG_LEVEL: process.env.GATEWAY_LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  const logs: string[] = []
  const stderr: string[] = []
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start within ${START_BOUND_MS} ms: ${stderr.join('\n')}`)), START_BOUND_MS)
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`gateway exited (${code}) before listening: ${stderr.join('\n')} ${logs.join('\n')}`))
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      logs.push(line)
      const listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)
      if (listening !== null) {
        clearTimeout(timer)
        resolve(listening[1]!)
      }
    })
  })
  return { url, child, exited, logs }
}
