import { statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import { followNotification } from '../../server/notification.js'
import { tempDir } from '../helpers/gateway.js'
import { consumedRecords } from '../helpers/records.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }
const PAGE = 4096

// Regression: SQLite's automatic checkpoint ran inside a commit, on the event loop,
// every 1,000 pages: a 10 ms pause (far more on a busy machine) at the p99 of consumed batches.
t.test('commits never checkpoint: the log grows past SQLite\'s automatic threshold until the checkpoint worker copies it', async (t) => {
  const file = join(tempDir(t), 'inbox.sqlite')
  const inbox = new SqliteInbox(file, { maxPerUser: 1_000_000, maxAgeMs: 365 * 86_400_000 })
  t.teardown(() => inbox.close())
  let offset = 0
  const append = async (count: number): Promise<void> => {
    await inbox.append(consumedRecords(Array.from({ length: count }, () => followNotification(bruno, emma)), { firstOffset: offset }))
    offset += count
  }
  // The worker's own timer checkpoints every second; these appends take a fraction of that.
  for (let i = 0; i < 30; i++) await append(500)
  const logBytes = statSync(`${file}-wal`).size
  t.ok(logBytes > 1000 * PAGE, `the log holds more than 1,000 pages (${Math.round(logBytes / PAGE)}): no commit checkpointed it`)
  const done = await inbox.checkpoint()
  t.ok(done !== undefined && done.log > 0 && done.checkpointed === done.log, `the worker copied the whole log (${JSON.stringify(done)})`)
  await append(10)
  t.ok(statSync(`${file}-wal`).size <= logBytes, 'the next commit starts the log over instead of growing it')
  const reopened = (await inbox.history('1', 1)).items.length
  t.equal(reopened, 1, 'and the store reads as before')
})

t.test('an in-memory inbox has no checkpoint worker', async (t) => {
  const inbox = new SqliteInbox(':memory:', { maxPerUser: 10, maxAgeMs: 1000 })
  t.equal(await inbox.checkpoint(), undefined)
  await inbox.close()
})
