import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { startWatched, whenOwnerGone } from '../../local/watchdog.js'
import { projectRoot } from '../../server/project-root.js'
import { eventually } from '../helpers/eventually.js'
import { tempDir } from '../helpers/gateway.js'
import { isRunning, secondsUntilGone } from '../helpers/processes.js'

const GONE_BOUND_MS = 10_000

// A watched command does not keep its owner running, and these tests wait on what they watch.
const keepAlive = setInterval(() => {}, 1000)
t.teardown(() => { clearInterval(keepAlive) })

/** Runs `script` (ESM, with `startWatched` and `whenOwnerGone` in scope) in a Node process of its own; resolves with its first stdout line. */
async function owner (t: Test, script: string): Promise<{ line: string, kill: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    `import { startWatched, whenOwnerGone } from './local/watchdog.ts'\n${script}\nsetInterval(() => {}, 60_000)\n`], {
    cwd: projectRoot(),
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const exitedEarly = once(child, 'exit').then(([code]) => { throw new Error(`the owner exited with ${String(code)}`) })
  const [line] = await Promise.race([once(createInterface({ input: child.stdout }), 'line') as Promise<[string]>, exitedEarly])
  return { line, kill: () => { child.kill('SIGKILL') } }
}

t.test('a watched command: its pid, its lines, and its exit status as a shell reports it', async (t) => {
  const lines: string[] = []
  const exits = await startWatched('sh', ['-c', 'echo out; echo err >&2; exit 3'], { name: 'test-watchdog', graceSeconds: 1, onLine: (line) => lines.push(line) })
  t.equal(await exits.exited, 'exit code 3', 'its own exit code')
  t.equal(exits.status, 'exit code 3', 'and status says it once it is gone')
  t.same(lines.sort(), ['err', 'out'], 'stdout and stderr both reach onLine')

  const sleeper = await startWatched('sleep', ['60'], { name: 'test-watchdog', graceSeconds: 1 })
  const command = (): string => readFileSync(`/proc/${sleeper.pid}/cmdline`, 'utf8')
  t.match(await eventually('the fork has exec\'d', command, (line) => line.startsWith('sleep'), { timeoutMs: GONE_BOUND_MS, everyMs: 10 }), /^sleep/, 'pid is the command\'s, not the shell\'s')
  t.equal(sleeper.status, undefined, 'no status while it runs')
  t.equal(await sleeper.stop(), 'signal SIGTERM', 'stop() is SIGTERM')
  t.notOk(isRunning(sleeper.pid), 'and it is gone once stop() resolves')
  t.equal(await sleeper.stop(), 'signal SIGTERM', 'stop() again answers the same')

  const killed = await startWatched('sleep', ['60'], { name: 'test-watchdog', graceSeconds: 1 })
  t.equal(await killed.kill('SIGKILL'), 'signal SIGKILL', 'kill() sends its signal to the command itself')
})

t.test('a command that ignores SIGTERM is killed after the grace', async (t) => {
  let trapped: () => void = () => {}
  const ignoring = new Promise<void>((resolve) => { trapped = resolve })
  const stubborn = await startWatched('sh', ['-c', 'trap "" TERM; echo trapped; while :; do sleep 1; done'], { name: 'test-watchdog', graceSeconds: 1, onLine: () => { trapped() } })
  await ignoring
  const startedAt = performance.now()
  t.equal(await stubborn.stop(), 'signal SIGKILL', 'SIGKILL in the end')
  t.ok(performance.now() - startedAt >= 1000, 'after the one-second grace')
  t.notOk(isRunning(stubborn.pid))
})

t.test('a watched command dies with its owner, even on SIGKILL', async (t) => {
  const { line, kill } = await owner(t, 'const sleeper = await startWatched(\'sleep\', [\'60\'], { name: \'test-watchdog\', graceSeconds: 1 })\nconsole.log(sleeper.pid)')
  const pid = Number(line)
  t.ok(isRunning(pid), `sleep ${pid} runs`)
  kill()
  await secondsUntilGone([pid], GONE_BOUND_MS)
  t.pass('and is gone after its owner was killed')
})

t.test('whenOwnerGone: the script runs at runNow(), or when the owner dies, never after cancel()', async (t) => {
  const dir = tempDir(t)
  const mark = (name: string): string => join(dir, name)
  const script = 'touch "$1"'

  const now = whenOwnerGone('test-watchdog', script, [mark('now')])
  await now.runNow()
  t.ok(existsSync(mark('now')), 'runNow() runs it and resolves once it is done')

  const cancelled = whenOwnerGone('test-watchdog', script, [mark('cancelled')])
  cancelled.cancel()

  const { kill } = await owner(t, `whenOwnerGone('test-watchdog', ${JSON.stringify(script)}, [${JSON.stringify(mark('owner'))}])\nconsole.log('watching')`)
  kill()
  t.ok(await eventually('the script ran', () => existsSync(mark('owner')), Boolean, { timeoutMs: GONE_BOUND_MS }), 'the owner\'s SIGKILL runs it')
  t.notOk(existsSync(mark('cancelled')), 'a cancelled one never ran')
})
