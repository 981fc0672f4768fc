import { createRequire } from 'node:module'

/** What a statement binds and returns: both drivers read INTEGER and REAL as numbers, TEXT as strings. */
export type SqlValue = string | number | null

export interface SqliteStatement<Params extends SqlValue[], Row> {
  run (...params: Params): { changes: number }
  get (...params: Params): Row | undefined
  all (...params: Params): Row[]
}

/** The slice of a connection the inbox uses, the same on node:sqlite's DatabaseSync and better-sqlite3's Database. */
interface DriverDatabase {
  exec (sql: string): void
  prepare (sql: string): SqliteStatement<SqlValue[], unknown>
  close (): void
}

type DriverDatabaseClass = new (file: string) => DriverDatabase

/** A SQLite connection, with the same settings and transactions whichever driver opened it. */
export class SqliteDatabase {
  readonly #db: DriverDatabase
  readonly #begin: SqliteStatement<[], unknown>
  readonly #commit: SqliteStatement<[], unknown>
  readonly #rollback: SqliteStatement<[], unknown>

  constructor (db: DriverDatabase) {
    this.#db = db
    // better-sqlite3's compiled-in defaults, set here so that node:sqlite behaves the same: a
    // 16 MiB page cache, and up to 5 s of waiting for a lock the checkpoint worker holds.
    db.exec('PRAGMA cache_size = -16000; PRAGMA busy_timeout = 5000')
    this.#begin = this.prepare('BEGIN')
    this.#commit = this.prepare('COMMIT')
    this.#rollback = this.prepare('ROLLBACK')
  }

  exec (sql: string): void {
    this.#db.exec(sql)
  }

  /** The types say what the SQL binds and returns: nothing checks them against it. */
  prepare<Params extends SqlValue[] = SqlValue[], Row = unknown> (sql: string): SqliteStatement<Params, Row> {
    return this.#db.prepare(sql) as SqliteStatement<Params, Row>
  }

  /** Runs `fn` in one transaction: committed if it returns, rolled back if it (or the commit) throws. Not nestable. */
  transaction<T> (fn: () => T): T {
    this.#begin.run()
    try {
      const result = fn()
      this.#commit.run()
      return result
    } catch (error) {
      try {
        this.#rollback.run()
      } catch {
        // SQLite ends the transaction itself on some failures (SQLITE_FULL, SQLITE_IOERR…): nothing to roll back.
      }
      throw error
    }
  }

  close (): void {
    this.#db.close()
  }
}

/** SQLite's primary result codes that say values are wrong for the table (and will be again): a size, a constraint, a type. */
const REFUSAL_CODES = new Map([[18, 'SQLITE_TOOBIG'], [19, 'SQLITE_CONSTRAINT'], [20, 'SQLITE_MISMATCH']])

/**
 * The SQLite code of an error that refuses the values as they are, whichever driver threw it
 * (better-sqlite3 names it, `SQLITE_CONSTRAINT_NOTNULL`; node:sqlite numbers it, `errcode` 1299);
 * undefined for any other error.
 */
export function refusalCode (error: unknown): string | undefined {
  const { code, errcode } = (error ?? {}) as { code?: unknown, errcode?: unknown }
  if (typeof errcode === 'number') return REFUSAL_CODES.get(errcode & 0xff)
  if (typeof code !== 'string') return undefined
  return [...REFUSAL_CODES.values()].find((name) => code === name || code.startsWith(`${name}_`))
}

export interface SqliteDriver {
  readonly name: 'node:sqlite' | 'better-sqlite3'
  /** How another thread (the checkpoint worker) loads the same driver: `require(module)[exportName]`, or the module itself. */
  readonly module: string
  readonly exportName: string | undefined
  open (file: string): SqliteDatabase
}

let chosen: SqliteDriver | undefined

/**
 * Node's own SQLite where Node has it (22.13 and later), else better-sqlite3 (Node 20, which has
 * none). better-sqlite3 12 aborts the process on Node 24 (its statements' destructor, run by the
 * garbage collector, asserts on a Node environment that is not there), and 13, which fixed that,
 * crashes on Node 20: neither release serves both. Chosen on first use, so that a gateway on
 * PostgreSQL never needs either.
 */
export function sqliteDriver (): SqliteDriver {
  chosen ??= pickDriver()
  return chosen
}

function pickDriver (): SqliteDriver {
  const nodeSqlite = process.getBuiltinModule('node:sqlite') as { DatabaseSync: DriverDatabaseClass } | undefined
  if (nodeSqlite !== undefined) {
    return { name: 'node:sqlite', module: 'node:sqlite', exportName: 'DatabaseSync', open: (file) => new SqliteDatabase(new nodeSqlite.DatabaseSync(file)) }
  }
  const require = createRequire(import.meta.url)
  let module: string
  try {
    module = require.resolve('better-sqlite3')
  } catch (error) {
    throw new Error(`The SQLite inbox needs node:sqlite (Node.js 22.13 or later) or the better-sqlite3 package on Node.js ${process.versions.node}, ` +
      'and better-sqlite3 is not installed (an optional dependency: its native build may have failed during npm install). ' +
      'Run `npm install better-sqlite3` and read its output, use a newer Node.js, or set DATABASE_URL for the PostgreSQL inbox', { cause: error })
  }
  const Database = require(module) as DriverDatabaseClass
  return { name: 'better-sqlite3', module, exportName: undefined, open: (file) => new SqliteDatabase(new Database(file)) }
}
