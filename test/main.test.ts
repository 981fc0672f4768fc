// `npm start` as a user runs it in a terminal, where Ctrl-C signals the whole foreground process
// group: npm and the gateway both get SIGINT, and npm passes its own on to the gateway too.
import t from 'tap'
import { projectRoot } from '../server/project-root.js'
import { runCommand } from './helpers/command.js'
import { tempDir, testEnv } from './helpers/gateway.js'

// npm start builds first (tsc, for the server and the page): tens of seconds on 2 cores.
const START_BOUND_MS = 150_000
const STOP_BOUND_MS = 30_000
const UP_LINE = 'kafka-notify is up'

t.setTimeout(200_000)

// Regression: the gateway took the second SIGINT of one Ctrl-C as "force" and exited 1
// ("second SIGINT, exiting") without closing the inbox or the local broker.
t.test('one Ctrl-C on npm start (SIGINT to its process group) closes the gateway cleanly, with exit code 0', async (t) => {
  const env = { ...process.env, ...testEnv(tempDir(t)), LOG_LEVEL: 'info' }
  const npm = runCommand(t, 'npm', ['start'], { cwd: projectRoot(), env })
  const lines = (): string[] => [...npm.stdout, ...npm.stderr]
  const printed = (): string => lines().slice(-30).join('\n')

  await npm.until(() => `"${UP_LINE}"; it printed:\n${printed()}`, () => lines().some((line) => line.includes(UP_LINE)) || npm.exit !== undefined, START_BOUND_MS)
  if (npm.exit !== undefined) throw new Error(`npm start exited (${npm.exit.code ?? npm.exit.signal}) before the gateway was up:\n${printed()}`)

  process.kill(-npm.pid, 'SIGINT')
  await npm.until(() => `npm start to exit after SIGINT; it printed:\n${printed()}`, () => npm.exit !== undefined, STOP_BOUND_MS)
  t.same(npm.exit, { code: 0, signal: null }, `exit code 0\n${printed()}`)
  t.notOk(lines().some((line) => /second SIGINT|killed by timeout/.test(line)), 'the signals of one Ctrl-C count as one')
  t.equal(lines().filter((line) => line.includes('"msg":"Shutting down"')).length, 1, 'one shutdown')
  t.ok(lines().some((line) => line.includes('Shutdown step done: close the inbox')), 'which closed the inbox')
  // Regression: a Ctrl-C before the consumer ran logged "Shutdown step failed: Kafka: stop fetching" (kafkajs
  // refuses to pause a consumer that never ran) with its stack, at error level, on a clean stop.
  t.same(lines().filter((line) => /"level":(50|60)/.test(line)), [], 'nothing logged as an error')
})
