/** What one run does; `--quick` shrinks every phase to fit in under two minutes. */
export interface Settings {
  quick: boolean
  phases: PhaseName[]
  /** Users in the generated directory, ids u1…uN. */
  users: number
  /** Users that send the follows (the last ones of the directory); never connected. */
  followers: number
  /** Connected users that receive the follows of the latency and ingest phases, and the delivery records. */
  recipients: number
  connectionLevels: number[]
  warmup: { rate: number, durationMs: number }
  latency: Array<{ rate: number, durationMs: number }>
  ingest: { rates: number[], durationMs: number, p99BoundMs: number }
  delivery: { records: number, batchSize: number, inFlight: number }
  catchUp: { missed: number, repetitions: number }
  /**
   * The gateway's WS_HEARTBEAT_MS. Each connection level is read after one period, so every
   * socket has been pinged: the default (30 s) in a full run, shorter in a quick one.
   */
  heartbeatMs: number
  /** How long the frames of a step may trail its last request. */
  drainMs: number
  requestTimeoutMs: number
  httpSockets: number
  connectConcurrency: number
  /** The whole run is cut off after this. */
  runTimeoutMs: number
}

export const PHASES = ['connections', 'latency', 'ingest', 'delivery', 'catch-up'] as const
export type PhaseName = typeof PHASES[number]

const full: Settings = {
  quick: false,
  phases: [...PHASES],
  users: 20_000,
  followers: 1000,
  recipients: 5000,
  connectionLevels: [5000, 10_000, 19_000],
  warmup: { rate: 1000, durationMs: 15_000 },
  latency: [
    { rate: 100, durationMs: 30_000 },
    { rate: 1000, durationMs: 30_000 },
    { rate: 5000, durationMs: 20_000 }
  ],
  ingest: { rates: [1000, 2000, 3000, 5000, 7500, 10_000, 12_500, 15_000, 17_500, 20_000, 25_000, 30_000, 40_000], durationMs: 10_000, p99BoundMs: 100 },
  delivery: { records: 200_000, batchSize: 2000, inFlight: 4 },
  catchUp: { missed: 1000, repetitions: 5 },
  heartbeatMs: 30_000,
  drainMs: 10_000,
  requestTimeoutMs: 10_000,
  httpSockets: 256,
  connectConcurrency: 50,
  runTimeoutMs: 25 * 60_000
}

const quick: Settings = {
  ...full,
  quick: true,
  recipients: 1000,
  connectionLevels: [2000],
  warmup: { rate: 1000, durationMs: 5000 },
  latency: [
    { rate: 100, durationMs: 4000 },
    { rate: 1000, durationMs: 4000 },
    { rate: 5000, durationMs: 4000 }
  ],
  ingest: { ...full.ingest, rates: [1000, 2000, 5000, 10_000, 15_000, 20_000], durationMs: 3000 },
  delivery: { ...full.delivery, records: 30_000 },
  catchUp: { missed: 1000, repetitions: 1 },
  heartbeatMs: 10_000,
  drainMs: 5000,
  runTimeoutMs: 4 * 60_000
}

export function parseArgs (argv: readonly string[]): Settings & { profile: boolean, gatewayRuntime: 'dist' | 'tsx' } {
  let settings = full
  let profile = false
  let gatewayRuntime: 'dist' | 'tsx' = 'dist'
  let phases: PhaseName[] | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--quick') settings = quick
    else if (arg === '--profile') profile = true
    else if (arg === '--tsx') gatewayRuntime = 'tsx'
    else if (arg === '--phases') phases = parsePhases(argv[++i])
    else if (arg.startsWith('--phases=')) phases = parsePhases(arg.slice('--phases='.length))
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE)
      process.exit(0)
    } else {
      throw new Error(`unknown argument ${arg}\n${USAGE}`)
    }
  }
  return { ...settings, phases: phases ?? settings.phases, profile, gatewayRuntime }
}

function parsePhases (list: string | undefined): PhaseName[] {
  const names = (list ?? '').split(',').filter(Boolean)
  for (const name of names) {
    if (!(PHASES as readonly string[]).includes(name)) throw new Error(`unknown phase ${name}; phases: ${PHASES.join(', ')}`)
  }
  if (names.length === 0) throw new Error(`--phases needs a list: ${PHASES.join(',')}`)
  return names as PhaseName[]
}

export const USAGE = `Usage: npm run bench -- [--quick] [--phases ${PHASES.join(',')}] [--profile] [--tsx]

  --quick     a reduced run, under two minutes
  --phases    run only these phases (comma-separated)
  --profile   run the gateway with --cpu-prof and print its hottest functions
  --tsx       run the gateway from server/*.ts through tsx instead of the built dist/

Environment: KAFKA_BROKERS (use this broker), GATEWAY_URL (use this gateway; GATEWAY_PID to
measure its memory and CPU, AUTH_SECRET to sign its tokens instead of POST /api/sessions).
Writes bench/results/latest.json, latest.md and latency.svg.
`
