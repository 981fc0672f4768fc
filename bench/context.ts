import { loadavg } from 'node:os'
import type { Cleanup } from './cleanup.js'
import type { ClientFleet } from './fleet.js'
import type { HttpLoadApi } from './http-load.js'
import type { ChildWorker } from './ipc.js'
import type { User } from '../server/directory.js'
import { CpuMeter } from './proc.js'
import type { Progress } from './progress.js'
import type { Settings } from './settings.js'
import type { Stack } from './stack.js'

/** Who plays which part. Followers are never connected, so a follow never notifies its sender. */
export interface Roles {
  /** Connected through the sequential, ingest and produce phases (and, over event streams, the sse phase). */
  recipients: User[]
  followers: User[]
  /** Offline users whose missed notifications are replayed. */
  catchUp: User[]
  /** The one user the sequential phase follows, connected by that phase alone. */
  sequentialRecipient: User
  /** Users that may be connected at all (everyone but the followers). */
  connectable: User[]
}

export function assignRoles (users: readonly User[], settings: Settings): Roles {
  const followerCount = Math.max(1, Math.min(settings.followers, Math.floor(users.length / 10)))
  const followers = users.slice(users.length - followerCount)
  const connectable = users.slice(0, users.length - followerCount)
  const spare = settings.catchUp.repetitions + 1
  const recipients = connectable.slice(0, Math.max(1, Math.min(settings.recipients, connectable.length - spare)))
  const catchUp = connectable.slice(recipients.length, recipients.length + spare - 1)
  const sequentialRecipient = connectable[recipients.length + spare - 1] ?? recipients[0]!
  return { recipients, followers, catchUp, sequentialRecipient, connectable }
}

export interface BenchContext {
  settings: Settings
  stack: Stack
  roles: Roles
  fleet: ClientFleet
  /** The HTTP load: autocannon's closed loop and the sequential follows, in a process of its own. */
  http: ChildWorker<HttpLoadApi>
  progress: Progress
  /** Where a phase that starts processes of its own registers their stop, so Ctrl-C stops them too. */
  cleanup: Cleanup
}

/**
 * A CPU meter over every process of the run. `load` is what makes the load: the HTTP load and
 * record producer processes, and this orchestrator (which only polls and waits meanwhile).
 */
export function meter (context: BenchContext, extraLoad: ReadonlyArray<number | undefined> = []): CpuMeter {
  return new CpuMeter({
    gateway: context.stack.gatewayPid,
    kafka: context.stack.brokerPid,
    load: [context.http.pid, process.pid, ...extraLoad],
    clients: context.fleet.pids
  })
}

/** The 1, 5 and 15 minute load averages now, two decimals. */
export function loadAverage (): number[] {
  return loadavg().map((value) => Math.round(value * 100) / 100)
}

export function formatCpu (cpu: Record<string, number>): string {
  return Object.entries(cpu).map(([name, percent]) => `${name} ${percent}%`).join(', ')
}
