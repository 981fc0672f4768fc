import { startGatewayProcess, type GatewayProcess } from '../../local/gateway-process.js'
import { tempDir, type TestContext } from './gateway.js'

/** A gateway of `spawnGateway`: its process, its address and what it logged. */
export interface SpawnedGateway extends GatewayProcess {
  readonly url: string
  /** Every line it wrote so far (pino JSON on stdout, and stderr). */
  readonly logs: string[]
  /** Calls `listener` with each line it writes from now on. */
  onLine (listener: (line: string) => void): void
}

const READY_BOUND_MS = 120_000

/**
 * Runs server/main.ts as a real process (local/gateway-process.ts, through tsx as `npm run dev`
 * does), for the tests that kill or restart it; resolves once its /readyz answers 200. Teardown
 * SIGKILLs it if it still runs.
 */
export async function spawnGateway (t: TestContext, env: Record<string, string>): Promise<SpawnedGateway> {
  const logs: string[] = []
  const listeners: Array<(line: string) => void> = []
  const gateway = await startGatewayProcess({
    port: 0, // its address comes from its log line, so LOG_LEVEL stays at info or lower
    // A directory of its own: main.ts reads a .env from its working directory, and a
    // developer's .env must not change what the tests run.
    cwd: tempDir(t, 'kafka-notify-cwd-'),
    env: { ...env, LOG_LEVEL: process.env.GATEWAY_LOG_LEVEL ?? 'info' },
    onLine: (line) => {
      logs.push(line)
      for (const listener of listeners) listener(line)
    }
  })
  t.teardown(async () => { await gateway.kill('SIGKILL') })
  let url: string
  try {
    url = await gateway.ready(READY_BOUND_MS)
  } catch (error) {
    throw new Error(`${(error as Error).message}:\n${logs.join('\n')}`)
  }
  return Object.assign(gateway, { url, logs, onLine: (listener: (line: string) => void) => { listeners.push(listener) } })
}
