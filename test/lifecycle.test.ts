import t from 'tap'
import type { Logger } from '../server/logger.js'
import { boundedProbe, CloseStack, closeInOrder, within } from '../server/lifecycle.js'
import { FakeClock } from './helpers/fake-clock.js'

interface Line { level: string, msg: string | undefined, err?: unknown }

/** A logger that keeps what it is told. */
function recordingLogger (): { log: Logger, lines: Line[] } {
  const lines: Line[] = []
  const at = (level: string) => (obj: unknown, msg?: string): void => {
    if (typeof obj === 'string') lines.push({ level, msg: obj })
    else lines.push({ level, msg, err: (obj as { err?: unknown }).err })
  }
  const log: Logger = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: () => log }
  return { log, lines }
}

/** Lets pending promise callbacks run (the fake clock does not advance them). */
async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

t.test('closeInOrder runs every step in order; one that throws or rejects does not stop the later ones, and each failure is logged', async (t) => {
  const { log, lines } = recordingLogger()
  const ran: string[] = []
  const thrown = new Error('pause() without a group')
  const rejected = new Error('coordinator unreachable')
  await closeInOrder([
    { name: 'stop fetching', close: () => { ran.push('stop fetching'); throw thrown } },
    { name: 'commit offsets', close: async () => { ran.push('commit offsets'); throw rejected } },
    { name: 'close the inbox', close: async () => { ran.push('close the inbox') } }
  ], log)
  t.same(ran, ['stop fetching', 'commit offsets', 'close the inbox'])
  t.same(lines, [
    { level: 'error', msg: 'Shutdown step failed: stop fetching; going on', err: thrown },
    { level: 'error', msg: 'Shutdown step failed: commit offsets; going on', err: rejected },
    { level: 'info', msg: 'Shutdown step done: close the inbox' }
  ])
})

t.test('closeInOrder gives up on a step that hangs past stepTimeoutMs, logs it, and goes on', async (t) => {
  const clock = new FakeClock()
  const { log, lines } = recordingLogger()
  const ran: string[] = []
  const closed = closeInOrder([
    { name: 'leave the group', close: () => new Promise(() => {}) },
    { name: 'disconnect the producer', close: () => { ran.push('disconnect the producer') } }
  ], log, { stepTimeoutMs: 3000, doneLevel: 'debug', clock })
  await settle()
  clock.advance(2999)
  await settle()
  t.same(ran, [], 'still waiting for the hung step')
  clock.advance(1)
  await closed
  t.same(ran, ['disconnect the producer'])
  t.match(lines, [
    { level: 'error', msg: 'Shutdown step failed: leave the group; going on', err: { message: 'leave the group took more than 3000 ms' } },
    { level: 'debug', msg: 'Shutdown step done: disconnect the producer' }
  ])
})

t.test('a CloseStack closes the last declared first, once, whatever a step threw', async (t) => {
  const { log, lines } = recordingLogger()
  const closing = new CloseStack()
  const ran: string[] = []
  closing.defer('close the inbox', () => { ran.push('inbox') })
  closing.defer('close the fan-out', () => { ran.push('fan-out'); throw new Error('already closed') })
  closing.defer('close the Kafka clients', async () => { ran.push('kafka') })
  const first = closing.close(log)
  const second = closing.close(log)
  t.equal(second, first, 'a second close waits for the first')
  await first
  t.same(ran, ['kafka', 'fan-out', 'inbox'], 'the Kafka clients (which flush the inbox) before the inbox')
  t.equal(lines.filter((line) => line.level === 'error').length, 1, 'the failure was logged')
  await closing.close(log)
  t.same(ran, ['kafka', 'fan-out', 'inbox'], 'nothing ran twice')
})

t.test('within settles with the work, or with what `late` gives once the time is up', async (t) => {
  const clock = new FakeClock()
  t.equal(await within(Promise.resolve('answered'), 1000, () => 'late', clock), 'answered')
  await t.rejects(within(Promise.reject(new Error('refused')), 1000, () => 'late', clock), { message: 'refused' })

  const never = new Promise<string>(() => {})
  const slow = within(never, 1000, () => 'late', clock)
  clock.advance(1000)
  t.equal(await slow, 'late')
  const failing = within(never, 1000, () => { throw new Error('gave up') }, clock)
  clock.advance(1000)
  await t.rejects(failing, { message: 'gave up' })
})

t.test('within leaves no timer behind once the work settled', async (t) => {
  const clock = new FakeClock()
  let lateCalls = 0
  await within(Promise.resolve(1), 1000, () => { lateCalls++; return 0 }, clock)
  t.equal(clock.timers, 0, 'its timer was cancelled')
  clock.advance(1000)
  t.equal(lateCalls, 0, 'the timeout never fired')
})

t.test('a bounded probe shares one request between concurrent checks, bounds it in time, and asks again next time', async (t) => {
  const clock = new FakeClock()
  const answers: Array<(verdict: string[]) => void> = []
  const probe = boundedProbe(() => new Promise<string[]>((resolve) => { answers.push(resolve) }), 1500, () => ['did not answer within 1500 ms'], clock)

  const [a, b] = [probe(), probe()]
  t.equal(answers.length, 1, 'one request for two concurrent checks')
  answers[0]!([])
  t.same(await Promise.all([a, b]), [[], []])

  const c = probe()
  t.equal(answers.length, 2, 'a later check asks again')
  clock.advance(1500)
  t.same(await c, ['did not answer within 1500 ms'])
  answers[1]!(['too late to count'])
  const d = probe()
  t.equal(answers.length, 3, 'a timed-out check does not keep later ones waiting')
  answers[2]!(['down'])
  t.same(await d, ['down'])
})
