import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { chooseLogFormat, type LogFormat } from '../server/logger.js'

t.test('LOG_FORMAT decides when set; unset, a terminal gets pretty lines, and a pipe or production JSON', async (t) => {
  t.equal(chooseLogFormat('json', true, undefined), 'json')
  t.equal(chooseLogFormat('pretty', false, 'production'), 'pretty')
  t.equal(chooseLogFormat(undefined, true, undefined), 'pretty', 'a person at a terminal')
  t.equal(chooseLogFormat(undefined, true, 'development'), 'pretty')
  t.equal(chooseLogFormat(undefined, false, undefined), 'json', 'a pipe, a file, a log collector')
  t.equal(chooseLogFormat(undefined, true, 'production'), 'json', 'production, even at a terminal')
})

/** What a process that logs one entry through createLogger writes on stdout (a pipe, without colours). */
async function loggedBy (format: LogFormat): Promise<string> {
  // A file, not --eval: pino's transport thread inherits the process's flags, and --eval means nothing there.
  const script = fileURLToPath(new URL('fixtures/log-once.ts', import.meta.url))
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', import.meta.resolve('tsx'), script, format], {
    env: { ...process.env, NO_COLOR: '1' },
    timeout: 30_000
  })
  return stdout
}

t.test('pretty: a line a person reads, with time, level, message and fields, without pid and hostname', async (t) => {
  t.match(await loggedBy('pretty'), /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Emma is online \{"userId":"1"\}\n$/)
})

t.test('json: pino\'s JSON object a line, what log-line.ts, the bench and the tests read', async (t) => {
  const lines = (await loggedBy('json')).trimEnd().split('\n')
  t.equal(lines.length, 1)
  t.match(JSON.parse(lines[0]!), { level: 30, msg: 'Emma is online', userId: '1', pid: Number, hostname: String })
})
