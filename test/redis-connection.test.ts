import t from 'tap'
import { connectServer, quitRedis, watchLink } from '../server/redis-connection.js'
import { quiet } from './helpers/quiet-log.js'
import { startRedis } from './helpers/redis.js'
import { startTcpProxy } from './helpers/tcp-proxy.js'

const PING_MS = 200

const redis = await startRedis(t)
if (redis !== undefined) {
  // Nothing pinged the connections, so one a NAT forgot stayed `ready`, deaf, for hours.
  t.test('a link that goes silent without closing is dropped at the first unanswered ping and opened again; unready until then', async (t) => {
    const url = new URL(redis.url)
    const proxy = await startTcpProxy(t, { host: url.hostname, port: Number(url.port) })
    url.port = String(proxy.port)
    const client = connectServer(url.href, 'subscriber', quiet, { commandTimeout: PING_MS })
    t.teardown(() => quitRedis(client))
    let reset: () => void = () => {}
    const resets = new Promise<void>((resolve) => { reset = resolve })
    let reasonAtReset: string | undefined
    const link = watchLink(client, 'subscriber', quiet, () => {
      reasonAtReset = link.unreadyReason()
      reset()
    }, PING_MS)
    await new Promise((resolve) => client.once('ready', resolve))
    t.equal(link.unreadyReason(), undefined, 'ready')

    proxy.silence()
    await resets
    t.equal(reasonAtReset, `Redis subscriber did not answer a ping within ${PING_MS} ms; reconnecting`, 'unready from the missed ping on')
    await new Promise((resolve) => client.once('ready', resolve))
    t.equal(link.unreadyReason(), undefined, 'ready again, on a new link')
    t.equal(await client.ping(), 'PONG')
    t.equal(proxy.accepted, 2)
  })
}
