/** What one run does; `--quick` shrinks every phase so the whole run takes under three minutes. */
export interface Settings {
  quick: boolean
  phases: PhaseName[]
  /** Users in the generated directory, ids u1…uN. */
  users: number
  /** Users that send the follows (the last ones of the directory); never connected. */
  followers: number
  /** Connected users: the followees of the ingest phase and the recipients of the produced records. */
  recipients: number
  connectionLevels: number[]
  sequential: { warmUp: number, count: number }
  /** Closed loop: each connection sends its next POST when the previous one is answered. */
  ingest: { warmUp: { connections: number, durationS: number }, connections: number[], durationS: number }
  /**
   * Records produced straight to Kafka at fixed rates. `latencyRates` always run; above them the
   * rate steps up through `rates` until a step is not sustained.
   */
  produce: { latencyRates: number[], rates: number[], durationMs: number, warmUp: { rate: number, durationMs: number } }
  /**
   * The produce phase's delivery over Server-Sent Events: the same records at each of `rates` to the
   * same users, each holding an event stream (GET /sse) instead of a WebSocket.
   */
  sse: { rates: number[], durationMs: number, warmUp: { rate: number, durationMs: number } }
  catchUp: { missed: number, repetitions: number }
  /**
   * POST /api/notifications, open loop, for each of `recipientsPerCall`: at `latencyRate` and at
   * `peakRate` notifications per second (requests per second × recipients per request).
   */
  publish: { recipientsPerCall: number[], latencyRate: number, peakRate: number, durationMs: number, warmUp: { rate: number, durationMs: number } }
  /**
   * The feed state's cost: notifications at `rate`/s (one recipient a request) plain, grouped, and
   * with `marksRate` state changes/s alongside, `durationMs` each.
   */
  state: { rate: number, marksRate: number, durationMs: number, warmUp: { rate: number, durationMs: number } }
  /**
   * `--gateways N` (N ≥ 2): N gateways sharing PostgreSQL and Redis against the one SQLite gateway,
   * records produced at each of `latencyRates` for `durationMs`, then a burst of `burst.records`
   * as fast as the producer sends them for the delivered rate. `multiTabShare` of the recipients
   * hold a tab on every gateway; the others one tab, on the gateways in turn. `follows`: POST
   * /api/follows at each of `rates` for `durationMs`, open loop, over the setup's gateways in turn.
   */
  gateways: {
    count: number
    latencyRates: number[]
    durationMs: number
    burst: { records: number, rate: number }
    warmUp: { rate: number, durationMs: number }
    follows: { rates: number[], durationMs: number, warmUp: { rate: number, durationMs: number } }
    multiTabShare: number
    drainMs: number
  }
  /**
   * The gateway's WS_HEARTBEAT_MS. Each connection level is read after one period, so every
   * socket has been pinged: the default (30 s) in a full run, shorter in a quick one.
   */
  heartbeatMs: number
  /** How long the frames of a step may trail its last request or record. */
  drainMs: number
  connectConcurrency: number
  /** The whole run is cut off after this. */
  runTimeoutMs: number
}

export const PHASES = ['connections', 'sequential', 'ingest', 'produce', 'sse', 'publish', 'state', 'catch-up', 'gateways'] as const
export type PhaseName = typeof PHASES[number]
/** Runs only with `--gateways N`: it starts PostgreSQL, Redis and N more gateways of its own. */
const OPT_IN: readonly PhaseName[] = ['gateways']

const full: Settings = {
  quick: false,
  phases: PHASES.filter((phase) => !OPT_IN.includes(phase)),
  users: 20_000,
  followers: 1000,
  recipients: 2000,
  connectionLevels: [10_000, 19_000],
  sequential: { warmUp: 500, count: 300 },
  ingest: { warmUp: { connections: 50, durationS: 5 }, connections: [10, 50, 100], durationS: 10 },
  produce: {
    latencyRates: [1000, 5000, 10_000],
    rates: [15_000, 20_000, 25_000, 30_000, 40_000],
    durationMs: 10_000,
    warmUp: { rate: 2000, durationMs: 5000 }
  },
  sse: { rates: [1000, 5000], durationMs: 10_000, warmUp: { rate: 2000, durationMs: 5000 } },
  catchUp: { missed: 1000, repetitions: 3 },
  publish: { recipientsPerCall: [1, 10, 100], latencyRate: 2000, peakRate: 20_000, durationMs: 10_000, warmUp: { rate: 2000, durationMs: 5000 } },
  state: { rate: 1000, marksRate: 200, durationMs: 10_000, warmUp: { rate: 1000, durationMs: 3000 } },
  gateways: {
    count: 1,
    latencyRates: [1000, 5000],
    durationMs: 10_000,
    burst: { records: 60_000, rate: 60_000 },
    warmUp: { rate: 2000, durationMs: 5000 },
    follows: { rates: [1000, 5000], durationMs: 10_000, warmUp: { rate: 1000, durationMs: 5000 } },
    multiTabShare: 0.1,
    drainMs: 30_000
  },
  heartbeatMs: 30_000,
  drainMs: 10_000,
  connectConcurrency: 50,
  runTimeoutMs: 20 * 60_000
}

const quick: Settings = {
  ...full,
  quick: true,
  connectionLevels: [10_000],
  ingest: { warmUp: { connections: 50, durationS: 2 }, connections: [10, 50, 100], durationS: 3 },
  produce: { ...full.produce, durationMs: 3000, warmUp: { rate: 2000, durationMs: 2000 } },
  sse: { ...full.sse, durationMs: 3000, warmUp: { rate: 2000, durationMs: 2000 } },
  catchUp: { missed: 1000, repetitions: 1 },
  publish: { ...full.publish, durationMs: 3000, warmUp: { rate: 2000, durationMs: 2000 } },
  state: { ...full.state, durationMs: 5000, warmUp: { rate: 1000, durationMs: 2000 } },
  gateways: {
    ...full.gateways,
    durationMs: 3000,
    burst: { records: 20_000, rate: 60_000 },
    warmUp: { rate: 2000, durationMs: 2000 },
    follows: { rates: [1000, 5000], durationMs: 3000, warmUp: { rate: 1000, durationMs: 2000 } },
    drainMs: 15_000
  },
  heartbeatMs: 10_000,
  drainMs: 5000,
  runTimeoutMs: 5 * 60_000
}

export function parseArgs (argv: readonly string[]): Settings & { profile: boolean, gatewayRuntime: 'dist' | 'tsx' } {
  let settings = full
  let profile = false
  let gatewayRuntime: 'dist' | 'tsx' = 'dist'
  let phases: PhaseName[] | undefined
  let gateways = 1
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--quick') settings = quick
    else if (arg === '--profile') profile = true
    else if (arg === '--tsx') gatewayRuntime = 'tsx'
    else if (arg === '--phases') phases = parsePhases(argv[++i])
    else if (arg.startsWith('--phases=')) phases = parsePhases(arg.slice('--phases='.length))
    else if (arg === '--gateways') gateways = parseGateways(argv[++i])
    else if (arg.startsWith('--gateways=')) gateways = parseGateways(arg.slice('--gateways='.length))
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE)
      process.exit(0)
    } else {
      throw new Error(`unknown argument ${arg}\n${USAGE}`)
    }
  }
  // Run in the order of PHASES whatever order they were listed in: connections first, while
  // nothing else has grown the gateway's heap.
  // --gateways N adds its phase to whichever others were chosen.
  if (phases?.includes('gateways') === true && gateways < 2) throw new Error(`the gateways phase needs --gateways N (N ≥ 2)\n${USAGE}`)
  const listed = phases ?? settings.phases
  const chosen = PHASES.filter((phase) => listed.includes(phase) || (phase === 'gateways' && gateways >= 2))
  return { ...settings, phases: chosen, gateways: { ...settings.gateways, count: gateways }, profile, gatewayRuntime }
}

function parseGateways (value: string | undefined): number {
  const count = Number(value)
  if (!Number.isInteger(count) || count < 1 || count > MAX_GATEWAYS) throw new Error(`--gateways needs a count from 1 to ${MAX_GATEWAYS}, got ${value ?? 'nothing'}`)
  return count
}

/** More gateways than cores makes little sense; a few more still run. */
const MAX_GATEWAYS = 8

function parsePhases (list: string | undefined): PhaseName[] {
  const names = (list ?? '').split(',').filter(Boolean)
  for (const name of names) {
    if (!(PHASES as readonly string[]).includes(name)) throw new Error(`unknown phase ${name}; phases: ${PHASES.join(', ')}`)
  }
  if (names.length === 0) throw new Error(`--phases needs a list: ${PHASES.join(',')}`)
  return names as PhaseName[]
}

export const USAGE = `Usage: npm run bench -- [--quick] [--phases ${PHASES.join(',')}] [--gateways N] [--profile] [--tsx]

  --quick     a reduced run, under three minutes
  --phases    run only these phases (comma-separated; they run in the order above)
  --gateways  N ≥ 2: also run the gateways phase: N gateways sharing PostgreSQL and Redis,
              side by side with the one SQLite gateway (needs postgresql and redis-server)
  --profile   run the gateway with --cpu-prof and print its hottest functions
  --tsx       run the gateway from server/*.ts through tsx instead of the built dist/

Environment: KAFKA_BROKERS (use this broker), GATEWAY_URL (use this gateway; GATEWAY_PID to
measure its memory and CPU, AUTH_SECRET to sign its tokens instead of POST /api/sessions).
Writes bench/results/latest.json, latest.md and latency.svg.
`
