import { createRequire } from 'node:module'
import t from 'tap'
import { BATCH_OVERHEAD_BYTES, decodeRecord, encodedSize, encodeNotification, MAX_RECORD_BYTES, RECORD_HEADERS } from '../../server/kafka/record.js'
import { followNotification, messageNotification, type Notification } from '../../server/notification.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }

function decode (key: string | null, value: unknown) {
  const valueBuffer = value === null ? null : Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))
  return decodeRecord(key === null ? null : Buffer.from(key), valueBuffer)
}

t.test('encodeNotification keys the record by recipient and labels its value', async (t) => {
  const notification = followNotification(bruno, emma)
  const record = encodeNotification(notification)
  t.equal(record.key, '1', 'key = userId (the recipient)')
  t.same(JSON.parse(record.value), notification, 'value = the notification as JSON')
  t.same(record.headers, { [RECORD_HEADERS.CONTENT_TYPE]: 'application/json', [RECORD_HEADERS.VERSION]: '1' })
  t.same(record.headers, { 'content-type': 'application/json', 'notification-version': '1' })
})

t.test('a record encoded by encodeNotification decodes back to the same notification, with its JSON as sent', async (t) => {
  for (const notification of [followNotification(bruno, emma), messageNotification(emma, bruno, 'Hi there ✓')]) {
    const record = encodeNotification(notification)
    const verdict = decodeRecord(Buffer.from(record.key), Buffer.from(record.value))
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
    ['an unknown type', '1', { ...good, type: 'like' }, 'invalid', /^invalid: value\.type must be equal to one of the allowed values/],
    ['an extra field', '1', { ...good, priority: 'high' }, 'invalid', /^invalid: value must NOT have additional properties/],
    ['a createdAt that is not ISO-8601 UTC', '1', { ...good, createdAt: '27/11/2026' }, 'invalid', /^invalid: value\.createdAt /],
    ['a createdAt that is not a date', '1', { ...good, createdAt: '2026-13-45T25:61:00Z' }, 'invalid', /^invalid: value\.createdAt is not a date/],
    ['a createdAt on a day its month lacks', '1', { ...good, createdAt: '2025-02-29T10:00:00Z' }, 'invalid', /^invalid: value\.createdAt is not a date of the calendar \("2025-02-29T10:00:00Z"\)/],
    ['a createdAt at 24:00', '1', { ...good, createdAt: '2026-01-01T24:00:00Z' }, 'invalid', /^invalid: value\.createdAt is not a date/],
    ['a createdAt in year 0', '1', { ...good, createdAt: '0000-01-01T00:00:00Z' }, 'invalid', /^invalid: value\.createdAt is not a date/],
    ['a missing key', null, good, 'missing-key', /^missing-key: /],
    ['an empty key', '', good, 'missing-key', /^missing-key: /],
    ['a key other than the recipient', '2', good, 'key-mismatch', /^key-mismatch: the key is not value\.userId/]
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
})

t.test('a recipient this gateway\'s directory does not know is accepted: the directory is not the consumer\'s to judge by', async (t) => {
  const notification = { ...followNotification(bruno, emma), userId: '99' }
  t.match(decode('99', notification), { ok: true, notification })
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
