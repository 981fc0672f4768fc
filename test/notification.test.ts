import t from 'tap'
import { Ajv } from 'ajv'
import { dataProblem, followNotification, isCalendarInstant, messageNotification, notificationSchema, uuidv7, uuidv8 } from '../server/notification.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }
const validNotification = new Ajv().compile(notificationSchema)

/** The 48-bit Unix milliseconds a UUIDv7 starts with. */
function timestampOf (id: string): number {
  return parseInt(id.replaceAll('-', '').slice(0, 12), 16)
}

t.test('uuidv7 has the RFC 9562 format, version 7 and variant 10', async (t) => {
  const ids = Array.from({ length: 1000 }, () => uuidv7())
  t.same(ids.filter((id) => !UUID.test(id)), [], 'every id is a lowercase UUID')
  t.same(ids.filter((id) => id[14] !== '7'), [], 'the version nibble is 7')
  t.same(ids.filter((id) => !['8', '9', 'a', 'b'].includes(id[19]!)), [], 'the variant bits are 10')
  t.same(new Set(ids.map((id) => id[19])), new Set(['8', '9', 'a', 'b']), 'the other two variant-byte bits stay random')
})

t.test('uuidv7 starts with the given time in milliseconds', async (t) => {
  const now = Date.UTC(2026, 10, 27, 14, 0, 0, 123)
  const id = uuidv7(now)
  t.equal(timestampOf(id), now)
  t.equal(id.slice(0, 13), `${now.toString(16).padStart(12, '0').slice(0, 8)}-${now.toString(16).padStart(12, '0').slice(8)}`)
  t.equal(timestampOf(uuidv7(0)), 0)
  t.equal(timestampOf(uuidv7(2 ** 48 - 1)), 2 ** 48 - 1)
})

t.test('uuidv7 ids sort by creation time', async (t) => {
  const base = Date.UTC(2026, 0, 1)
  const ids = [5, 1, 4, 2, 3, 1000, 999_999].map((offset) => ({ offset, id: uuidv7(base + offset) }))
  const byId = [...ids].sort((a, b) => (a.id < b.id ? -1 : 1)).map(({ offset }) => offset)
  t.same(byId, [1, 2, 3, 4, 5, 1000, 999_999])
  const before = uuidv7()
  const after = uuidv7(Date.now() + 1)
  t.ok(before < after, 'a later millisecond sorts after')
})

t.test('uuidv7 ids are unique', async (t) => {
  const now = Date.now()
  const ids = new Set(Array.from({ length: 10_000 }, () => uuidv7(now)))
  t.equal(ids.size, 10_000, 'even within one millisecond')
})

t.test('followNotification is for the followee, from the follower', async (t) => {
  const before = Date.now()
  const notification = followNotification(bruno, emma)
  const after = Date.now()
  t.match(notification, {
    id: UUID,
    type: 'follow',
    userId: '1',
    actor: { id: '2', name: 'Bruno' },
    message: 'Bruno started following you.'
  })
  t.same(Object.keys(notification).sort(), ['actor', 'createdAt', 'id', 'message', 'type', 'userId'])
  t.match(notification.createdAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
  const createdAt = Date.parse(notification.createdAt)
  t.ok(createdAt >= before && createdAt <= after, 'createdAt is now')
  t.ok(validNotification(notification), 'matches the notification schema')
})

t.test('followNotification copies the actor and takes a given id', async (t) => {
  const follower = { id: '3', name: 'Rick', extra: 'not copied' }
  const notification = followNotification(follower, bruno, 'fixed-id')
  t.equal(notification.id, 'fixed-id')
  t.same(notification.actor, { id: '3', name: 'Rick' })
  t.not(notification.actor, follower)
})

t.test('messageNotification carries the sender\'s text to the recipient', async (t) => {
  const notification = messageNotification(emma, bruno, 'Hello Bruno!')
  t.match(notification, {
    id: UUID,
    type: 'message',
    userId: '2',
    actor: { id: '1', name: 'Emma' },
    message: 'Hello Bruno!'
  })
  t.same(Object.keys(notification).sort(), ['actor', 'createdAt', 'id', 'message', 'type', 'userId'])
  t.ok(validNotification(notification), 'matches the notification schema')
  t.equal(messageNotification(emma, bruno, 'x', 'given').id, 'given')
})

// Regression: Date.parse takes each of the impossible ones below for another day.
t.test('isCalendarInstant takes the instants of the calendar and refuses what Date.parse would roll over', async (t) => {
  const real = ['2024-02-29T00:00:00Z', '2026-04-30T23:59:59.999Z', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999999999Z', '2000-02-29T12:00:00.5Z', '0099-06-15T08:30:00Z']
  const impossible = ['2025-02-29T10:00:00Z', '1900-02-29T00:00:00Z', '2026-04-31T10:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T23:60:00Z', '2016-12-31T23:59:60Z', '0000-01-01T00:00:00Z', '2026-00-10T00:00:00Z', '2026-13-01T00:00:00Z', '2026-01-00T00:00:00Z']
  t.same(real.filter((createdAt) => !isCalendarInstant(createdAt)), [], 'leap days, year 1, year 9999 and two-digit years are real')
  t.same(impossible.filter((createdAt) => isCalendarInstant(createdAt)), [], 'days a month lacks, 24:00, a 60th minute or second, year 0 are not')
  t.same(['2025-02-29T10:00:00Z', '2026-04-31T10:00:00Z', '2026-01-01T24:00:00Z', '0000-01-01T00:00:00Z'].filter((createdAt) => Number.isNaN(Date.parse(createdAt))), [],
    'though Date.parse takes a missing day, 24:00 and year 0 for dates')
  t.notOk(isCalendarInstant('2026-01-01 10:00:00Z'), 'and the format is the schema\'s')
  t.ok(validNotification({ ...followNotification(bruno, emma), createdAt: '2026-04-31T10:00:00Z' }), 'the schema checks the format only')
})

t.test('uuidv8 is a UUID of version 8 and variant 10, the same for the same name', async (t) => {
  const ids = Array.from({ length: 1000 }, (_, i) => uuidv8(`name ${i}`))
  t.same(ids.filter((id) => !UUID.test(id)), [], 'every id is a lowercase UUID')
  t.same(ids.filter((id) => id[14] !== '8'), [], 'the version nibble is 8')
  t.same(ids.filter((id) => !['8', '9', 'a', 'b'].includes(id[19]!)), [], 'the variant bits are 10')
  t.equal(new Set(ids).size, 1000, 'other names, other ids')
  t.equal(uuidv8('name 7'), ids[7], 'the same name, the same id')
  t.ok(validNotification({ ...followNotification(bruno, emma), id: uuidv8('x') }), 'a notification id')
})

t.test('the notification schema takes any lowercase type and the optional fields of version 2', async (t) => {
  const base = followNotification(bruno, emma)
  for (const type of ['follow', 'message', 'comment.reply', 'invoice.paid', 'a', 'x_y-z.9', `a${'b'.repeat(63)}`]) {
    t.ok(validNotification({ ...base, type }), `type ${type}`)
  }
  for (const type of ['', 'Comment', '1st', '.x', 'a b', 'é', `a${'b'.repeat(64)}`]) {
    t.notOk(validNotification({ ...base, type }), `type ${JSON.stringify(type)} refused`)
  }
  t.ok(validNotification({
    ...base,
    actor: { id: 'svc-1', name: 'Billing', avatarUrl: 'https://cdn.example.com/b.png' },
    title: 'Invoice paid',
    url: 'https://app.example.com/invoices/7',
    data: { amount: 12.5, currency: 'EUR' },
    groupKey: 'invoice:7'
  }), 'every optional field')
  t.notOk(validNotification({ ...base, title: 't'.repeat(201) }), 'a title over 200 characters')
  t.notOk(validNotification({ ...base, actor: { id: '2', name: 'Bruno', avatarUrl: '/me.png' } }), 'an avatar that is a path: http(s) only')
  t.notOk(validNotification({ ...base, actor: { id: '2', name: 'Bruno', avatarUrl: `https://x.example/${'a'.repeat(2048)}` } }), 'an avatar URL over 2,048 characters')
  t.notOk(validNotification({ ...base, groupKey: 'k'.repeat(129) }), 'a groupKey over 128 characters')
  t.notOk(validNotification({ ...base, data: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])) }), 'data with 65 keys at the top')
})

t.test('dataProblem bounds data by size, depth and keys at all levels', async (t) => {
  t.equal(dataProblem({}), undefined)
  t.equal(dataProblem({ a: { b: { c: { d: 1 } } } }), undefined, 'four levels: data, a, b, c')
  t.equal(dataProblem({ a: [[[1]]] }), undefined, 'arrays count as levels too: four')
  t.equal(dataProblem({ a: [[[[1]]]] }), 'must nest objects and arrays at most 4 levels deep')
  t.equal(dataProblem({ a: { b: { c: { d: {} } } } }), 'must nest objects and arrays at most 4 levels deep', 'an empty object is a level')
  const keys = (n: number, prefix: string): Record<string, number> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, i]))
  t.equal(dataProblem({ ...keys(31, 'a'), nested: keys(32, 'b') }), undefined, '31 + 1 + 32 = 64 keys')
  t.equal(dataProblem({ ...keys(32, 'a'), nested: keys(32, 'b') }), 'must have at most 64 keys at all levels together', '65 keys')
  t.equal(dataProblem({ list: Array.from({ length: 500 }, (_, i) => i) }), undefined, 'array items are not keys')
  const text = 'x'.repeat(4096 - '{"t":""}'.length)
  t.equal(dataProblem({ t: text }), undefined, 'exactly 4,096 bytes as JSON')
  t.equal(dataProblem({ t: `${text}x` }), 'must be at most 4096 bytes as JSON (it has 4097)')
  t.equal(dataProblem({ t: 'é'.repeat(2045) }), 'must be at most 4096 bytes as JSON (it has 4098)', 'bytes, not characters')
})
