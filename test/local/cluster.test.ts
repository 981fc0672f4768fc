// `npm run cluster` (local/cluster.ts) as a user runs it: Emma on the first gateway and Bruno on
// the second are one system, and one SIGINT stops everything it started.
import { existsSync } from 'node:fs'
import t from 'tap'
import { isFree } from '../../local/ports.js'
import { POSTGRES_INSTALL_HINT, postgresBinDir } from '../../local/postgres.js'
import { REDIS_INSTALL_HINT, redisServerPath } from '../../local/redis.js'
import { projectRoot } from '../../server/project-root.js'
import { isCI } from '../helpers/ci.js'
import { FeedClient, follow, signIn } from '../helpers/clients.js'
import { freeRuns } from '../helpers/ports.js'
import { runCommand } from '../helpers/command.js'

// A 3-broker start takes 20–40 s on 2 cores, then two gateways join the group.
const START_BOUND_MS = 120_000
const FRAME_BOUND_MS = 30_000
const STOP_BOUND_MS = 60_000
const READY_LINE = '[cluster] Ctrl-C stops everything.'

t.setTimeout(170_000)

t.test('npm run cluster: a follow POSTed on one gateway reaches the followee\'s socket on the other, both ways; SIGINT stops all it started', async (t) => {
  const missing = [postgresBinDir() === undefined ? POSTGRES_INSTALL_HINT : '', redisServerPath() === undefined ? REDIS_INSTALL_HINT : ''].filter(Boolean)
  if (missing.length > 0) {
    if (isCI()) t.fail(`${missing.join('; ')} (CI must run this test)`)
    else void t.skip(`SKIPPED, ${missing.join('; ')}`, () => {})
    return
  }
  const port = await freeRuns(2)
  const cli = runCommand(t, process.execPath, ['--import', 'tsx', 'local/cluster.ts', '--port', String(port)], { cwd: projectRoot() })
  const { stdout, stderr } = cli
  const printed = (): string => [...stdout.slice(-20), ...stderr].join('\n')

  await cli.until(() => `the line "${READY_LINE}"; it printed:\n${printed()}`, () => stdout.includes(READY_LINE) || cli.exit !== undefined, START_BOUND_MS)
  if (cli.exit !== undefined) throw new Error(`local/cluster.ts exited (${cli.exit.code ?? cli.exit.signal}) before it was ready:\n${printed()}`)
  const a = `http://127.0.0.1:${port}`
  const b = `http://127.0.0.1:${port + 1}`
  t.ok(stdout.some((line) => line.includes(`Emma:  open ${a} `)), 'it tells to open the first gateway for Emma')
  t.ok(stdout.some((line) => line.includes(`Bruno: open ${b} `)), 'and the second for Bruno')
  for (const url of [a, b]) t.equal((await fetch(`${url}/readyz`)).status, 200, `${url} is ready`)
  t.ok(stdout.some((line) => line.startsWith(`[gateway ${port}] INFO `)) && stdout.some((line) => line.startsWith(`[gateway ${port + 1}] INFO `)),
    'each gateway\'s log is on the terminal, prefixed with its port')
  const printedPorts = ['KAFKA_BROKERS', 'DATABASE_URL', 'REDIS_URL'].flatMap((name) => {
    const value = stdout.map((line) => new RegExp(`^\\[cluster\\] +${name}=(\\S+)$`).exec(line)?.[1]).find(Boolean)
    t.ok(value, `it prints ${name}`)
    return [...(value ?? '').matchAll(/127\.0\.0\.1:(\d+)/g)].map((match) => Number(match[1]))
  })
  t.equal(printedPorts.length, 5, 'three brokers, PostgreSQL and Redis, on 127.0.0.1')
  const root = /in (\/\S+kafka-notify-cluster-\S+)$/.exec(stdout.find((line) => line.startsWith('[cluster] starting')) ?? '')?.[1]
  t.ok(root !== undefined && existsSync(root), 'it works in a temp dir')

  const emma = await signIn(a, '1')
  const bruno = await signIn(b, '2')
  const emmaFeed = await FeedClient.connect(a, emma)
  t.teardown(() => { emmaFeed.close() })
  t.match(await emmaFeed.next(), { type: 'ready', user: { id: '1' } }, 'Emma\'s socket on the first gateway')
  await followReaches(b, bruno, '1', emmaFeed, 'Bruno follows Emma on the second gateway: Emma\'s socket on the first gets it')

  const brunoFeed = await FeedClient.connect(b, bruno)
  t.teardown(() => { brunoFeed.close() })
  t.match(await brunoFeed.next(), { type: 'ready', user: { id: '2' } }, 'Bruno\'s socket on the second gateway')
  await followReaches(a, emma, '2', brunoFeed, 'Emma follows Bruno on the first gateway: Bruno\'s socket on the second gets it')

  process.kill(cli.pid, 'SIGINT')
  await cli.until(() => `local/cluster.ts to exit after SIGINT; it printed:\n${printed()}`, () => cli.exit !== undefined, STOP_BOUND_MS)
  t.same(cli.exit, { code: 0, signal: null }, `SIGINT: exit code 0\n${stderr.join('\n')}`)
  t.same((await emmaFeed.closed).code, 1001, 'the gateways closed their sockets as going away')
  for (const [what, ports] of [['gateway', [port, port + 1]], ['broker, PostgreSQL and Redis', printedPorts]] as const) {
    t.same((await Promise.all(ports.map(async (p) => await isFree(p) ? undefined : p))).filter(Boolean), [], `every ${what} port is free again`)
  }
  t.notOk(root !== undefined && existsSync(root), 'its temp dir is gone')
  t.ok(stdout.includes('[cluster] stopped'), 'and it said so')

  async function followReaches (url: string, token: string, followeeId: string, feed: FeedClient, name: string): Promise<void> {
    const response = await follow(url, token, followeeId)
    t.equal(response.status, 202, `${name}: 202`)
    const { notification } = await response.json() as { notification: { id: string } }
    t.match(await feed.nextOf('notification', FRAME_BOUND_MS), { notification: { id: notification.id, userId: followeeId } }, name)
  }
})
