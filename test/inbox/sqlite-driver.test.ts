import { join } from 'node:path'
import t from 'tap'
import { refusalCode, sqliteDriver } from '../../server/inbox/sqlite-driver.js'
import { tempDir } from '../helpers/gateway.js'

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
const hasNodeSqlite = major > 22 || (major === 22 && minor >= 13)

t.test(`Node ${process.versions.node} opens the SQLite inbox with ${hasNodeSqlite ? 'node:sqlite' : 'better-sqlite3'}`, async (t) => {
  t.equal(sqliteDriver().name, hasNodeSqlite ? 'node:sqlite' : 'better-sqlite3')
})

t.test('a connection has better-sqlite3\'s defaults whichever driver opened it: a 16 MiB page cache, 5 s of waiting for a lock', async (t) => {
  const db = sqliteDriver().open(join(tempDir(t), 'settings.sqlite'))
  t.teardown(() => db.close())
  t.same({ ...db.prepare('PRAGMA cache_size').get() as object }, { cache_size: -16000 })
  t.same({ ...db.prepare('PRAGMA busy_timeout').get() as object }, { timeout: 5000 })
})

t.test('a transaction keeps what its function wrote when it returns, and nothing when it throws', async (t) => {
  const db = sqliteDriver().open(':memory:')
  t.teardown(() => db.close())
  db.exec('CREATE TABLE rows (n INTEGER NOT NULL)')
  const insert = db.prepare<[number]>('INSERT INTO rows (n) VALUES (?)')
  const count = db.prepare<[], { rows: number }>('SELECT count(*) AS rows FROM rows')

  t.equal(db.transaction(() => { insert.run(1); insert.run(2); return 'done' }), 'done', 'the function\'s result')
  t.equal(count.get()?.rows, 2)

  const failure = new Error('the batch is bad')
  t.throws(() => db.transaction(() => { insert.run(3); throw failure }), failure, 'the function\'s error')
  t.equal(count.get()?.rows, 2, 'the row written before the error is gone')

  // As SQLite does itself on SQLITE_FULL or SQLITE_IOERR: the transaction is over before the error reaches it.
  t.throws(() => db.transaction(() => { insert.run(4); db.exec('ROLLBACK'); throw failure }), failure,
    'the function\'s error, when there is nothing left to roll back')
  t.equal(db.transaction(() => { insert.run(5); return count.get()?.rows }), 3, 'and the next transaction runs')
})

t.test('numbers bound to INTEGER columns are stored as integers and read back as numbers', async (t) => {
  const db = sqliteDriver().open(':memory:')
  t.teardown(() => db.close())
  db.exec('CREATE TABLE feeds (seq INTEGER NOT NULL)')
  db.prepare<[number]>('INSERT INTO feeds (seq) VALUES (?)').run(3)
  t.same({ ...db.prepare('SELECT seq, typeof(seq) AS type FROM feeds WHERE seq > ? LIMIT ?').get(2, 1) as object }, { seq: 3, type: 'integer' })
})

t.test('refusalCode names the errors that refuse values as they are, whichever driver threw them, and no other', async (t) => {
  const db = sqliteDriver().open(':memory:')
  t.teardown(() => db.close())
  db.exec('CREATE TABLE feeds (seq INTEGER NOT NULL, id TEXT UNIQUE)')
  const refusal = (run: () => unknown): string | undefined => {
    try {
      run()
    } catch (error) {
      return refusalCode(error)
    }
    return 'no error'
  }
  t.equal(refusal(() => db.prepare<[number, string]>('INSERT INTO feeds (seq, id) VALUES (?, ?)').run(Number.NaN, 'a')), 'SQLITE_CONSTRAINT', 'NaN is bound as NULL: NOT NULL')
  db.prepare<[number, string]>('INSERT INTO feeds (seq, id) VALUES (?, ?)').run(1, 'b')
  t.equal(refusal(() => db.prepare<[number, string]>('INSERT INTO feeds (seq, id) VALUES (?, ?)').run(2, 'b')), 'SQLITE_CONSTRAINT', 'UNIQUE')
  t.equal(refusal(() => db.exec('SELEC 1')), undefined, 'a syntax error is a bug, not a refusal')
  t.equal(refusalCode(new Error('disk I/O error')), undefined)
})
