import type { ClientFleet } from './fleet.js'
import type { ChildWorker } from './ipc.js'
import type { LoadGeneratorApi } from './load-generator.js'
import type { UserRef } from './producer.js'
import { CpuMeter } from './proc.js'
import type { Progress } from './progress.js'
import type { Settings } from './settings.js'
import type { Stack } from './stack.js'

/** Who plays which part. Followers are never connected, so a follow never notifies its sender. */
export interface Roles {
  /** Connected through the latency, ingest and delivery phases. */
  recipients: UserRef[]
  followers: UserRef[]
  /** Offline users whose missed notifications are replayed. */
  catchUp: UserRef[]
  /** Users that may be connected at all (everyone but the followers). */
  connectable: UserRef[]
}

export function assignRoles (users: readonly UserRef[], settings: Settings): Roles {
  const followerCount = Math.max(1, Math.min(settings.followers, Math.floor(users.length / 10)))
  const followers = users.slice(users.length - followerCount)
  const connectable = users.slice(0, users.length - followerCount)
  const spare = settings.catchUp.repetitions
  const recipients = connectable.slice(0, Math.max(1, Math.min(settings.recipients, connectable.length - spare)))
  const catchUp = connectable.slice(recipients.length, recipients.length + spare)
  return { recipients, followers, catchUp, connectable }
}

export interface BenchContext {
  settings: Settings
  stack: Stack
  roles: Roles
  fleet: ClientFleet
  load: ChildWorker<LoadGeneratorApi>
  progress: Progress
}

/** A CPU meter over every process of the run. */
export function meter (context: BenchContext): CpuMeter {
  return new CpuMeter({
    gateway: context.stack.gatewayPid,
    kafka: context.stack.brokerPid,
    loadGenerator: context.load.pid,
    wsClients: context.fleet.pids,
    bench: process.pid
  })
}

export function formatCpu (cpu: Record<string, number>): string {
  return Object.entries(cpu).map(([name, percent]) => `${name} ${percent}%`).join(', ')
}
