import { createRequire } from 'node:module'
import t from 'tap'
import { BATCH_OVERHEAD_BYTES, decodeRecord, encodedSize, encodeNotification, MAX_RECORD_BYTES, RECORD_HEADERS } from '../../server/kafka/record.js'
import type { RecordOrigin } from '../../server/kafka/tutorial-record.js'
import { followNotification, messageNotification, uuidv7, type Notification } from '../../server/notification.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }
const origin: RecordOrigin = { topic: 'notifications', partition: 3, offset: '41', timestamp: String(Date.UTC(2026, 10, 27, 14, 0, 0, 250)) }

function decode (key: string | null, value: unknown, from: RecordOrigin = origin) {
  const valueBuffer = value === null ? null : Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))
  return decodeRecord(key === null ? null : Buffer.from(key), valueBuffer, from)
}

t.test('encodeNotification keys the record by recipient and labels its value', async (t) => {
  const notification = followNotification(bruno, emma)
  const record = encodeNotification(notification)
  t.equal(record.key, '1', 'key = userId (the recipient)')
  t.same(JSON.parse(record.value), notification, 'value = the notification as JSON')
  t.same(record.headers, { [RECORD_HEADERS.CONTENT_TYPE]: 'application/json', [RECORD_HEADERS.VERSION]: '2' })
  t.same(record.headers, { 'content-type': 'application/json', 'notification-version': '2' })
})

t.test('a record encoded by encodeNotification decodes back to the same notification, with its JSON as sent', async (t) => {
  for (const notification of [followNotification(bruno, emma), messageNotification(emma, bruno, 'Hi there ✓')]) {
    const record = encodeNotification(notification)
    const verdict = decodeRecord(Buffer.from(record.key), Buffer.from(record.value), origin)
    t.same(verdict, { ok: true, notification, json: record.value })
  }
})

t.test('a notification without actor (a system notification) is accepted', async (t) => {
  const notification: Notification = { ...messageNotification(emma, bruno, 'Maintenance tonight'), actor: null }
  t.match(decode('2', notification), { ok: true, notification })
})

t.test('decodeRecord refuses every kind of bad record with its reason', async (t) => {
  const good = followNotification(bruno, emma)
  const refusals: Array<[string, string | null, unknown, string, RegExp]> = [
    ['a null value', '1', null, 'empty', /^empty: /],
    ['an empty value', '1', Buffer.alloc(0), 'empty', /^empty: /],
    ['a value over the size limit', '1', Buffer.alloc(MAX_RECORD_BYTES + 1, 0x20), 'too-large', new RegExp(`^too-large: the value has ${MAX_RECORD_BYTES + 1} bytes`)],
    ['a value that is not JSON', '1', '{"id": ', 'not-json', /^not-json: /],
    ['a value that is not UTF-8 JSON', '1', Buffer.from([0xff, 0xfe, 0x00]), 'not-json', /^not-json: /],
    ['a JSON array', '1', [good], 'invalid', /^invalid: value must be object/],
    ['a JSON string', '1', '"hello"', 'invalid', /^invalid: value /],
    ['a numeric userId', '1', { ...good, userId: 1 }, 'invalid', /^invalid: value\.userId must be string/],
    ['a numeric message', '1', { ...good, message: 42 }, 'invalid', /^invalid: value\.message must be string/],
    ['an empty message', '1', { ...good, message: '' }, 'invalid', /^invalid: value\.message /],
    ['a message over the length limit', '1', { ...good, message: 'x'.repeat(1001) }, 'invalid', /^invalid: value\.message /],
    ['an id that is not a UUID', '1', { ...good, id: 'abc' }, 'invalid', /^invalid: value\.id /],
    ['an actor without name', '1', { ...good, actor: { id: '2' } }, 'invalid', /^invalid: value\.actor/],
    ['a missing id', '1', { ...good, id: undefined }, 'invalid', /^invalid: value must have required property 'id'/],
    ['a missing createdAt', '1', { ...good, createdAt: undefined }, 'invalid', /^invalid: value must have required property 'createdAt'/],
    ['a type that is not a lowercase name', '1', { ...good, type: 'Comment Reply' }, 'invalid', /^invalid: value\.type must match pattern/],
    ['a type longer than 64 characters', '1', { ...good, type: `a${'b'.repeat(64)}` }, 'invalid', /^invalid: value\.type must match pattern/],
    ['an extra field', '1', { ...good, priority: 'high' }, 'invalid', /^invalid: value must NOT have additional properties \(priority\)/],
    ['a javascript: url', '1', { ...good, url: 'javascript:alert(1)' }, 'invalid', /^invalid: value\.url must match pattern/],
    ['a protocol-relative url', '1', { ...good, url: '//evil.example/x' }, 'invalid', /^invalid: value\.url must match pattern/],
    ['an empty title', '1', { ...good, title: '' }, 'invalid', /^invalid: value\.title /],
    ['a data: avatarUrl', '1', { ...good, actor: { id: '2', name: 'Bruno', avatarUrl: 'data:image/png;base64,AAAA' } }, 'invalid', /^invalid: value\.actor/],
    ['data that is an array', '1', { ...good, data: [1, 2] }, 'invalid', /^invalid: value\.data must be object/],
    ['data nested five levels deep', '1', { ...good, data: { a: { b: { c: { d: { e: 1 } } } } } }, 'invalid', /^invalid: value\.data must nest objects and arrays at most 4 levels deep/],
    ['data over 4 KiB', '1', { ...good, data: { text: 'x'.repeat(4096) } }, 'invalid', /^invalid: value\.data must be at most 4096 bytes as JSON/],
    ['a groupKey with a space', '1', { ...good, groupKey: 'post 42' }, 'invalid', /^invalid: value\.groupKey must match pattern/],
    ['a createdAt that is not ISO-8601 UTC', '1', { ...good, createdAt: '27/11/2026' }, 'invalid', /^invalid: value\.createdAt /],
    ['a createdAt that is not a date', '1', { ...good, createdAt: '2026-13-45T25:61:00Z' }, 'invalid', /^invalid: value\.createdAt is not a date/],
    ['a createdAt on a day its month lacks', '1', { ...good, createdAt: '2025-02-29T10:00:00Z' }, 'invalid', /^invalid: value\.createdAt is not a date of the calendar \("2025-02-29T10:00:00Z"\)/],
    ['a createdAt at 24:00', '1', { ...good, createdAt: '2026-01-01T24:00:00Z' }, 'invalid', /^invalid: value\.createdAt is not a date/],
    ['a createdAt in year 0', '1', { ...good, createdAt: '0000-01-01T00:00:00Z' }, 'invalid', /^invalid: value\.createdAt is not a date/],
    ['a missing key', null, good, 'missing-key', /^missing-key: /],
    ['an empty key', '', good, 'missing-key', /^missing-key: /],
    ['a key other than the recipient', '2', good, 'key-mismatch', /^key-mismatch: the key is not the recipient/]
  ]
  for (const [what, key, value, kind, reason] of refusals) {
    t.test(what, async (t) => {
      const verdict = decode(key, value)
      t.equal(verdict.ok, false)
      t.match(verdict, { kind, reason })
    })
  }
})

t.test('a value of exactly the size limit is accepted', async (t) => {
  const notification = followNotification(bruno, emma)
  const json = JSON.stringify(notification)
  const value = Buffer.from(json + ' '.repeat(MAX_RECORD_BYTES - Buffer.byteLength(json)))
  t.equal(value.length, MAX_RECORD_BYTES)
  t.same(decode('1', value), { ok: true, notification, json: value.toString('utf8') }, 'its JSON kept as sent, spaces and all: spliced into frames as is')
  t.match(decode('1', Buffer.concat([value, Buffer.from(' ')])), { ok: false, kind: 'too-large' }, 'one byte more is too large')
})

t.test('the checks come in order: the value first, then the key', async (t) => {
  t.match(decode(null, 'not json'), { kind: 'not-json' }, 'a bad value wins over a missing key')
  t.match(decode(null, { hello: 'world' }), { kind: 'invalid' }, 'an invalid value wins over a missing key')
})

t.test('a record for a recipient no directory lists is delivered: the directory is optional', async (t) => {
  const notification = { ...followNotification(bruno, emma), userId: 'u-7f3a' }
  t.same(decode('u-7f3a', notification), { ok: true, notification, json: JSON.stringify(notification) })
})

t.test('an app\'s own type with every optional field is accepted, its JSON kept as sent', async (t) => {
  const notification: Notification = {
    id: uuidv7(),
    type: 'comment.reply',
    userId: 'u-90b1',
    actor: { id: 'u-7f3a', name: 'Ana', avatarUrl: 'https://cdn.example.com/a/ana.png?s=64' },
    message: 'Ana replied to your comment.',
    createdAt: '2026-11-27T14:00:00.000Z',
    title: 'New reply',
    url: '/posts/42#comment-7',
    data: { postId: 42, excerpt: 'Great point!', tags: ['a', 'b'], thread: { depth: 2, parent: { id: 7, by: { name: 'x' } } } },
    groupKey: 'post:42'
  }
  const json = JSON.stringify(notification)
  t.same(decode('u-90b1', json), { ok: true, notification, json })
  for (const url of ['https://app.example.com/x?y=1', 'http://localhost:8080', '/', '/inbox?tab=all']) {
    t.match(decode('u-90b1', { ...notification, url }), { ok: true }, `url ${url}`)
  }
  for (const url of ['JAVASCRIPT:alert(1)', 'data:text/html,<b>', 'vbscript:x', 'https:evil', 'https://', '/\\evil.example', 'posts/42', ' /x', 'ftp://example.com/f', `/${'x'.repeat(2048)}`]) {
    t.match(decode('u-90b1', { ...notification, url }), { ok: false, kind: 'invalid' }, `url ${JSON.stringify(url).slice(0, 40)} refused`)
  }
})

t.test('a record of the Go tutorial\'s producer is a message from `from` to `to`', async (t) => {
  const value = { from: { id: 2, name: 'Bruno' }, to: { id: 1, name: 'Emma' }, message: 'Bruno started following you.' }
  const verdict = decode('1', value)
  t.equal(verdict.ok, true)
  if (!verdict.ok) return
  t.match(verdict.notification, {
    type: 'message',
    userId: '1',
    actor: { id: '2', name: 'Bruno' },
    message: 'Bruno started following you.',
    createdAt: '2026-11-27T14:00:00.250Z'
  }, 'numeric ids as text; createdAt is the record\'s timestamp')
  t.match(verdict.notification.id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUIDv8')
  t.equal(verdict.json, JSON.stringify(verdict.notification), 'its JSON is the notification\'s, not the tutorial shape')
  t.same(decode('1', value), verdict, 'read again at the same place: the same notification, the same id')
  const elsewhere = [{ ...origin, offset: '42' }, { ...origin, partition: 4 }, { ...origin, topic: 'other' }]
  t.equal(new Set(elsewhere.map((place) => (decode('1', value, place) as { notification: Notification }).notification.id).concat(verdict.notification.id)).size, 4,
    'another offset, partition or topic: another id')
  t.match(decode('u-1', { from: { id: 'u-2', name: 'Bo' }, to: { id: 'u-1', name: 'Al' }, message: 'hi' }), { ok: true, notification: { userId: 'u-1', actor: { id: 'u-2' } } }, 'string ids too')
  t.match(decode('1', value, { ...origin, timestamp: '-1' }), { ok: true }, 'a record without a timestamp is dated when read')
})

t.test('a tutorial-shaped record that is wrong goes to the DLQ with the tutorial shape\'s reason', async (t) => {
  const good = { from: { id: 2, name: 'Bruno' }, to: { id: 1, name: 'Emma' }, message: 'hi' }
  const refusals: Array<[string, string | null, unknown, string, RegExp]> = [
    ['no message', '1', { ...good, message: undefined }, 'invalid', /^invalid: value must have required property 'message' \(read as a Go tutorial record/],
    ['a fractional id', '1', { ...good, to: { id: 1.5, name: 'Emma' } }, 'invalid', /^invalid: value\.to\.id /],
    ['an id that is no user id', '1', { ...good, from: { id: 'a b', name: 'x' } }, 'invalid', /^invalid: value\.from\.id /],
    ['no `to`', '1', { from: good.from, message: 'hi' }, 'invalid', /^invalid: value must have required property 'to'/],
    ['an extra field', '1', { ...good, at: 'now' }, 'invalid', /^invalid: value must NOT have additional properties \(at\)/],
    ['a key other than `to.id`', '2', good, 'key-mismatch', /^key-mismatch: /],
    ['no key', null, good, 'missing-key', /^missing-key: /]
  ]
  for (const [what, key, value, kind, reason] of refusals) {
    t.match(decode(key, value), { ok: false, kind, reason }, what)
  }
})

// Regression: batches are cut by this estimate, below the broker's message.max.bytes,
// so it must never be less than what kafkajs really writes.
t.test('encodedSize is an upper bound of a record batch as kafkajs encodes it, and close to it', async (t) => {
  const require = createRequire(import.meta.url)
  const encodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (record: { offsetDelta: number, timestampDelta: number, key: Buffer, value: Buffer, headers: Record<string, string> }) => unknown
  const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch: (batch: { records: unknown[] }) => Promise<{ buffer: Buffer }> }
  const notifications = Array.from({ length: 1000 }, (_, i) => messageNotification(bruno, emma, 'é'.repeat(i % 1000 + 1)))
  const records = notifications.map((notification) => encodeNotification(notification))
  const estimate = BATCH_OVERHEAD_BYTES + records.reduce((sum, record) => sum + encodedSize(record), 0)
  // The largest deltas a batch can have: offsets up to its size, timestamps far apart.
  const encoded = await RecordBatch({
    records: records.map((record, i) => encodeRecord({ offsetDelta: i, timestampDelta: 2 ** 40, key: Buffer.from(record.key), value: Buffer.from(record.value), headers: record.headers }))
  })
  t.ok(estimate >= encoded.buffer.length, `estimate ${estimate} ≥ encoded ${encoded.buffer.length}`)
  t.ok(estimate - encoded.buffer.length <= records.length * 8, 'within 8 bytes a record')
})
