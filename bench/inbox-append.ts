// `npx tsx bench/inbox-append.ts`: the SQLite inbox's write throughput on its own, in transactions
// of 1, 50 and 500 notifications (the consumer writes one transaction per consumed batch), through
// the driver this Node gets (sqlite-driver.ts).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sqliteDriver } from '../server/inbox/sqlite-driver.js'
import { SqliteInbox } from '../server/inbox/sqlite-inbox.js'
import { followNotification } from '../server/notification.js'

const TOTAL = 100_000
const USERS = Array.from({ length: 5000 }, (_, i) => ({ id: `u${i}`, name: `User ${i}` }))

console.log(`Node ${process.versions.node}, SQLite through ${sqliteDriver().name}`)
for (const size of [1, 50, 500]) {
  const dir = mkdtempSync(join(tmpdir(), 'kafka-notify-inbox-bench-'))
  const inbox = new SqliteInbox(join(dir, 'inbox.sqlite'), { maxPerUser: 1000, maxAgeMs: Number.MAX_SAFE_INTEGER })
  const batches = Array.from({ length: TOTAL / size }, (_, b) => Array.from({ length: size }, (_, i) => {
    const notification = followNotification(USERS[(b * size + i + 1) % USERS.length]!, USERS[(b * size + i) % USERS.length]!)
    // As the consumer hands them on: with the record's JSON (stored as is) and timestamp.
    return { notification, json: JSON.stringify(notification), timestamp: Date.now(), topic: 'notifications', partition: 0, offset: String(b * size + i) }
  }))
  const started = performance.now()
  for (const batch of batches) await inbox.append(batch)
  const appendMs = performance.now() - started
  const flushStarted = performance.now()
  await inbox.flush()
  const flushMs = performance.now() - flushStarted
  await inbox.close()
  rmSync(dir, { recursive: true, force: true })
  console.log(`${size} per transaction: ${Math.round(TOTAL / appendMs * 1000)} notifications/s, ` +
    `${(appendMs / batches.length * 1000).toFixed(0)} us per transaction; flush (WAL fsync) ${flushMs.toFixed(1)} ms`)
}
