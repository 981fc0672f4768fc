import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const MODULE = fileURLToPath(new URL('../server/process-warnings.ts', import.meta.url))

/** What Node prints on stderr for a process that mutes `muted`, then runs `code`. */
async function stderrOf (muted: string[], code: string): Promise<string> {
  const script = `import { muteWarnings } from ${JSON.stringify(MODULE)}\nmuteWarnings(${JSON.stringify(muted)})\n${code}`
  const { stderr } = await promisify(execFile)(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '--eval', script], { timeout: 30_000 })
  return stderr
}

t.test('a muted warning is not printed; every other warning is, by Node\'s own printer', async (t) => {
  const stderr = await stderrOf(['TimeoutNegativeWarning'],
    "process.emitWarning('muted', 'TimeoutNegativeWarning'); process.emitWarning('the text', 'MaxListenersExceededWarning')")
  t.notMatch(stderr, /TimeoutNegativeWarning|muted/)
  t.match(stderr, /\(node:\d+\) MaxListenersExceededWarning: the text/)
})

const NEGATIVE_TIMEOUT = 'setTimeout(() => {}, -1796603307092)'
const warns = /TimeoutNegativeWarning/.test(await stderrOf([], NEGATIVE_TIMEOUT))

t.test('the negative timeout kafkajs\'s request queue arms prints nothing once TimeoutNegativeWarning is muted', {
  skip: warns ? false : `Node ${process.versions.node} clamps a negative timeout without a warning`
}, async (t) => {
  t.equal(await stderrOf(['TimeoutNegativeWarning'], NEGATIVE_TIMEOUT), '')
})
