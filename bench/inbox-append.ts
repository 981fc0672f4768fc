// `npx tsx bench/inbox-append.ts`: the SQLite inbox's appends on their own, through the driver this
// Node gets (sqlite-driver.ts), as the consumer makes them: one transaction per consumed batch, of
// 1, 10 (about what a 2 ms fetch pace brings at 5,000 records/s), 50 and 500 notifications, each to
// one of 2,000 users like the bench's produce phase. Follows (grouped: each joins its followee's
// open group, whose actors are counted) beside messages (no group). Reports the process's CPU time
// per notification, the kernel's share of it (the log's page writes) apart.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sqliteDriver } from '../server/inbox/sqlite-driver.js'
import { SqliteInbox } from '../server/inbox/sqlite-inbox.js'
import type { User } from '../server/directory.js'
import { followNotification, messageNotification, type Notification } from '../server/notification.js'

const TOTAL = 60_000
/** Appended before the timing starts: the feeds, groups and page cache as a running gateway has them. */
const WARM_UP = 20_000
const USERS = Array.from({ length: 2000 }, (_, i) => ({ id: `u${i}`, name: `User ${i}` }))
const SENDERS = Array.from({ length: 50_000 }, (_, i) => ({ id: `s${i}`, name: `Sender ${i}` }))
const KINDS: Record<string, (sender: User, recipient: User) => Notification> = {
  'follow (grouped)': (sender, recipient) => followNotification(sender, recipient),
  'message (no group)': (sender, recipient) => messageNotification(sender, recipient, 'hello')
}

console.log(`Node ${process.versions.node}, SQLite through ${sqliteDriver().name}; ${TOTAL - WARM_UP} notifications timed after ${WARM_UP}, to ${USERS.length} users`)
for (const [kind, make] of Object.entries(KINDS)) {
  for (const size of [1, 10, 50, 500]) {
    const dir = mkdtempSync(join(tmpdir(), 'kafka-notify-inbox-bench-'))
    const inbox = new SqliteInbox(join(dir, 'inbox.sqlite'), { maxPerUser: 1000, maxAgeMs: Number.MAX_SAFE_INTEGER })
    const batches = Array.from({ length: TOTAL / size }, (_, b) => Array.from({ length: size }, (_, i) => {
      const n = b * size + i
      // A prime stride: consecutive records go to different users, as the produce phase sends them.
      const notification = make(SENDERS[n % SENDERS.length]!, USERS[(n * 7) % USERS.length]!)
      // As the consumer hands them on: with the record's JSON (stored as is) and position.
      return { notification, json: JSON.stringify(notification), timestamp: Date.now(), topic: 'notifications', partition: 0, offset: String(n) }
    }))
    const warmBatches = WARM_UP / size
    for (const batch of batches.slice(0, warmBatches)) await inbox.append(batch)
    const cpuBefore = process.cpuUsage()
    const started = performance.now()
    for (const batch of batches.slice(warmBatches)) await inbox.append(batch)
    const appendMs = performance.now() - started
    const cpu = process.cpuUsage(cpuBefore)
    await inbox.close()
    rmSync(dir, { recursive: true, force: true })
    const timed = TOTAL - WARM_UP
    console.log(`${kind}, ${size} per transaction: ${Math.round(timed / appendMs * 1000)} notifications/s, ` +
      `${((cpu.user + cpu.system) / timed).toFixed(1)} µs CPU per notification (kernel ${(cpu.system / timed).toFixed(1)})`)
  }
}
