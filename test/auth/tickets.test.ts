import t from 'tap'
import { memoryTicketStore, redisTicketStore, TICKET_KEY_PREFIX, TICKET_PATTERN, TICKET_TTL_MS, Tickets, TicketsUnavailableError } from '../../server/auth/tickets.js'
import type { Principal } from '../../server/auth/tokens.js'
import { connectRedis, quitRedis } from '../../server/redis-connection.js'
import { eventually } from '../helpers/eventually.js'
import { startRedis } from '../helpers/redis.js'
import { pino } from 'pino'

const emma: Principal = { user: { id: '1', name: 'Emma' }, service: false, expiresAt: Math.floor(Date.now() / 1000) + 3600 }

t.test('a ticket is redeemed once, for the principal it was issued to', async (t) => {
  const tickets = new Tickets(memoryTicketStore())
  const { ticket, expiresAt } = await tickets.issue(emma)
  t.match(ticket, new RegExp(TICKET_PATTERN))
  const left = Date.parse(expiresAt) - Date.now()
  t.ok(left > 0 && left <= TICKET_TTL_MS, `good for at most ${TICKET_TTL_MS} ms (${left})`)
  t.same(await tickets.redeem(ticket), emma)
  t.equal(await tickets.redeem(ticket), undefined, 'used: gone')
  t.equal(await tickets.redeem('A'.repeat(43)), undefined, 'never issued')
  t.not((await tickets.issue(emma)).ticket, ticket, 'each ticket is new')
})

t.test('a ticket expires after TICKET_TTL_MS, or with its token if that comes first', async (t) => {
  let now = Date.now()
  const tickets = new Tickets(memoryTicketStore({ now: () => now }), () => now)
  const early = await tickets.issue(emma)
  now += TICKET_TTL_MS + 1
  t.equal(await tickets.redeem(early.ticket), undefined, 'expired')

  const shortToken = { ...emma, expiresAt: Math.floor(now / 1000) + 5 }
  const short = await tickets.issue(shortToken)
  t.ok(Date.parse(short.expiresAt) <= shortToken.expiresAt * 1000, 'never outlives the token')
  now += 6000
  t.equal(await tickets.redeem(short.ticket), undefined, 'gone with the token')
})

t.test('in memory, the oldest tickets make room past the bound', async (t) => {
  const tickets = new Tickets(memoryTicketStore({ maxTickets: 2 }))
  const [a, b, c] = [await tickets.issue(emma), await tickets.issue(emma), await tickets.issue(emma)]
  t.equal(await tickets.redeem(a.ticket), undefined)
  t.same([await tickets.redeem(b.ticket), await tickets.redeem(c.ticket)], [emma, emma])
})

t.test('in Redis, a ticket issued by one gateway is redeemed once on another, and expires there', async (t) => {
  const redis = await startRedis(t)
  if (redis === undefined) return
  const log = pino({ level: 'silent' })
  const [a, b] = [0, 1].map(() => connectRedis({ url: redis.url, cluster: false }, 'commands', log, { commandTimeout: 1000, maxRetriesPerRequest: 1 }))
  t.teardown(async () => { await quitRedis(a!); await quitRedis(b!) })
  const issuer = new Tickets(redisTicketStore(a!))
  const other = new Tickets(redisTicketStore(b!))
  const { ticket } = await issuer.issue(emma)
  t.ok(await a!.pttl(`${TICKET_KEY_PREFIX}${ticket}`) <= TICKET_TTL_MS, 'stored with its expiry')
  const redeemed = await Promise.all([other.redeem(ticket), issuer.redeem(ticket), other.redeem(ticket)])
  t.same(redeemed.filter((principal) => principal !== undefined), [emma], 'three gateways at once: one of them gets it')

  const short = await issuer.issue({ ...emma, expiresAt: Math.floor(Date.now() / 1000) + 1 })
  await eventually('Redis expired the short ticket', () => b!.exists(`${TICKET_KEY_PREFIX}${short.ticket}`), (exists) => exists === 0, { timeoutMs: 5000, everyMs: 50 })
  t.equal(await other.redeem(short.ticket), undefined, 'Redis expired it with its token')

  await redis.stop()
  await t.rejects(issuer.issue(emma), TicketsUnavailableError, 'Redis down: nothing issued')
  await t.rejects(other.redeem(ticket), TicketsUnavailableError, 'nor redeemed')
})
