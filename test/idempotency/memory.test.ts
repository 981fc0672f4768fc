import t from 'tap'
import { MemoryIdempotency, type IdempotencyOptions } from '../../server/idempotency/memory.js'
import type { KeyedAttempt } from '../../server/idempotency/types.js'
import { followNotification, type Notification } from '../../server/notification.js'
import { FakeClock } from '../helpers/fake-clock.js'

const DAY_MS = 24 * 60 * 60 * 1000
const users: Record<string, { id: string, name: string }> = {
  1: { id: '1', name: 'Emma' },
  2: { id: '2', name: 'Bruno' },
  3: { id: '3', name: 'Lena' }
}

function cache (options: Partial<IdempotencyOptions> = {}): MemoryIdempotency {
  return new MemoryIdempotency({ ttlMs: DAY_MS, ...options })
}

/** A follow by `userId` of user 3 under `key`, published with `publish` (accepted by default). */
function follow (idempotency: MemoryIdempotency, userId: string, key: string, publish: (notification: Notification) => Promise<void> = async () => {}, followeeId = '3', owner?: string): KeyedAttempt<Notification> {
  const follower = users[userId] ?? { id: userId, name: `User ${userId}` }
  const followee = users[followeeId] ?? { id: followeeId, name: `User ${followeeId}` }
  const create = (): Notification => followNotification(follower, followee)
  return owner === undefined
    ? idempotency.run(follower.id, key, followee.id, create, publish)
    : idempotency.run(follower.id, key, followee.id, create, publish, { owner })
}

function idOf (attempt: KeyedAttempt<Notification>): string | undefined {
  return attempt.kind === 'conflict' || attempt.kind === 'full' ? undefined : attempt.value.id
}

function publishingOf (attempt: KeyedAttempt<Notification>): Promise<void> | undefined {
  return attempt.kind === 'conflict' || attempt.kind === 'full' ? undefined : attempt.publishing
}

/** `follow`, then waits for its publish to settle (a settled key is one the cache may evict). */
async function settled (...args: Parameters<typeof follow>): Promise<KeyedAttempt<Notification>> {
  const attempt = follow(...args)
  if (attempt.kind !== 'conflict' && attempt.kind !== 'full') await attempt.publishing.catch(() => {})
  return attempt
}

t.test('a first request is new; the same key again is a duplicate: the same notification, without publishing', async (t) => {
  const idempotency = cache()
  let published = 0
  const publish = async (): Promise<void> => { published++ }
  const first = follow(idempotency, '1', 'k1', publish)
  t.equal(first.kind, 'new')
  await (publishingOf(first))
  const again = follow(idempotency, '1', 'k1', publish)
  t.equal(again.kind, 'duplicate')
  t.equal(idOf(again), idOf(first), 'the same notification')
  t.equal(published, 1, 'published once')
})

t.test('a key reused for another request is a conflict', async (t) => {
  const idempotency = cache()
  follow(idempotency, '1', 'k1')
  t.equal(follow(idempotency, '1', 'k1', async () => {}, '2').kind, 'conflict')
})

t.test('keys are scoped per user', async (t) => {
  const idempotency = cache()
  const emmas = follow(idempotency, '1', 'shared')
  const brunos = follow(idempotency, '2', 'shared')
  t.equal(brunos.kind, 'new')
  t.not(idOf(brunos), idOf(emmas))
})

t.test('while the first attempt is in flight, the same key waits for it', async (t) => {
  const idempotency = cache()
  let accept!: () => void
  const first = follow(idempotency, '1', 'k1', () => new Promise<void>((resolve) => { accept = resolve }))
  const second = follow(idempotency, '1', 'k1')
  t.equal(second.kind, 'duplicate')
  t.equal(publishingOf(second), publishingOf(first), 'the same publish')
  accept()
})

t.test('after a failed publish, the same key publishes the same notification again', async (t) => {
  const idempotency = cache()
  const published: string[] = []
  const first = follow(idempotency, '1', 'k1', async () => { throw new Error('Kafka is down') })
  await t.rejects(publishingOf(first) ?? Promise.resolve())
  const retry = follow(idempotency, '1', 'k1', async (notification) => { published.push(notification.id) })
  t.equal(retry.kind, 'retry')
  await (publishingOf(retry))
  t.same(published, [idOf(first)], 'the same id, published again')
  t.equal(follow(idempotency, '1', 'k1').kind, 'duplicate', 'and a duplicate once it went through')
})

t.test('a key expires after the TTL', async (t) => {
  const clock = new FakeClock(1_000_000)
  const idempotency = cache({ ttlMs: 1000, clock })
  const first = follow(idempotency, '1', 'k1')
  clock.advance(1000)
  t.equal(idOf(follow(idempotency, '1', 'k1')), idOf(first), 'kept for the whole TTL')
  clock.advance(1)
  const later = follow(idempotency, '1', 'k1')
  t.equal(later.kind, 'new', 'forgotten after it')
  t.not(idOf(later), idOf(first))
})

// Regression: the cache was bounded in entries, shared by everyone: one user (or a
// service token, exempt from rate limits) sending new keys pushed every other user's keys out.
t.test('one user filling the cache cannot evict another user\'s key', async (t) => {
  const idempotency = cache({ maxBytes: 64 * 1024, maxBytesPerUser: 4 * 1024, maxEntries: 100 })
  const emmas = await settled(idempotency, '1', 'emma-key')
  for (let i = 0; i < 1000; i++) await settled(idempotency, '2', `flood-${i}`)
  const again = follow(idempotency, '1', 'emma-key')
  t.equal(again.kind, 'duplicate', 'the other user\'s key is still there')
  t.equal(idOf(again), idOf(emmas))
  t.ok(idempotency.bytesOf('2') <= 4 * 1024, 'the flooding user stays within their share')
})

// Regression: past the overall bound the cache dropped the least recently used key,
// anyone's: about 40 callers with full shares (100,000 keys in all) pushed out every quiet
// caller's keys, though each of them stayed within their own share.
t.test('many busy callers together cannot evict a quiet caller\'s key: room is made in the largest shares', async (t) => {
  const idempotency = cache({ maxBytes: 64 * 1024, maxBytesPerUser: 4 * 1024, maxEntries: 60 })
  const emmas = await settled(idempotency, '1', 'emma-key')
  for (let round = 0; round < 20; round++) {
    for (let caller = 0; caller < 40; caller++) await settled(idempotency, `busy-${caller}`, `key-${round}`)
  }
  t.ok(idempotency.size <= 60, `the overall bound holds (${idempotency.size} keys)`)
  const again = follow(idempotency, '1', 'emma-key')
  t.equal(again.kind, 'duplicate', 'the quiet caller\'s key is still there')
  t.equal(idOf(again), idOf(emmas))
  const shares = Array.from({ length: 40 }, (_, caller) => idempotency.bytesOf(`busy-${caller}`))
  t.ok(Math.min(...shares) > 0, `and every busy caller keeps keys too: room came from the largest shares (${Math.min(...shares)}–${Math.max(...shares)} bytes each)`)
})

t.test('a user past their share loses their own oldest keys first', async (t) => {
  const idempotency = cache({ maxBytes: 64 * 1024, maxBytesPerUser: 4 * 1024 })
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}`)
  const ids: Array<string | undefined> = []
  for (const key of keys) ids.push(idOf(await settled(idempotency, '2', key)))
  // Newest first: a lookup of a forgotten key stores it again, which may push out older ones.
  const kept: boolean[] = []
  for (let i = keys.length - 1; i >= 0; i--) kept.push(idOf(await settled(idempotency, '2', keys[i]!)) === ids[i])
  const count = kept.indexOf(false)
  t.ok(count > 0, `the newest keys are kept (${count})`)
  t.same(kept.slice(count), kept.slice(count).map(() => false), 'every older one is gone')
  t.ok(idempotency.bytesOf('2') <= 4 * 1024)
})

t.test('a service acting for many followers is bounded by its own share', async (t) => {
  const idempotency = cache({ maxBytes: 64 * 1024, maxBytesPerUser: 4 * 1024 })
  const emmas = await settled(idempotency, '1', 'emma-key')
  for (let i = 0; i < 1000; i++) await settled(idempotency, `follower-${i}`, 'key', async () => {}, '3', 'backend')
  t.ok(idempotency.bytesOf('backend') <= 4 * 1024)
  t.equal(idempotency.bytesOf('follower-1'), 0, 'the followers pay nothing')
  t.equal(idOf(follow(idempotency, '1', 'emma-key')), idOf(emmas))
})

t.test('the byte bound holds, and every key is counted', async (t) => {
  const maxBytes = 16 * 1024
  const idempotency = cache({ maxBytes, maxBytesPerUser: 2 * 1024 })
  let maxSeen = 0
  let maxShare = 0
  for (let i = 0; i < 2000; i++) {
    await settled(idempotency, `user-${i % 50}`, `key-${i}-${'x'.repeat(i % 200)}`)
    maxSeen = Math.max(maxSeen, idempotency.bytes)
    maxShare = Math.max(maxShare, idempotency.bytesOf(`user-${i % 50}`))
  }
  t.ok(maxSeen <= maxBytes, `at most ${maxBytes} bytes (saw ${maxSeen})`)
  t.ok(maxShare <= 2 * 1024, `at most 2 KiB per user (saw ${maxShare})`)
  t.ok(idempotency.size > 0)
  const notification = followNotification(users['1']!, users['3']!)
  t.ok(idempotency.bytes / idempotency.size > JSON.stringify(notification).length, 'an entry costs at least its notification')
})

t.test('a key still publishing is never evicted: past the share, a new key is refused as full and nothing is published', async (t) => {
  const idempotency = cache({ maxBytes: 64 * 1024, maxBytesPerUser: 4 * 1024 })
  const pending: Array<() => void> = []
  const hang = (): Promise<void> => new Promise<void>((resolve) => { pending.push(resolve) })
  const first: KeyedAttempt<Notification>[] = []
  for (let i = 0; ; i++) {
    const attempt = follow(idempotency, '2', `k${i}`, hang)
    if (attempt.kind === 'full') break
    first.push(attempt)
    t.ok(i < 100, 'the share fills within 100 keys')
  }
  t.ok(first.length > 1)
  t.equal(pending.length, first.length, 'the refused key published nothing')
  for (const [i, attempt] of first.entries()) {
    t.equal(idOf(follow(idempotency, '2', `k${i}`, hang)), idOf(attempt), `publishing key k${i} is still known`)
  }
  t.equal(follow(idempotency, '1', 'emma', hang).kind, 'new', 'other users are not affected')
  for (const resolve of pending) resolve()
  await Promise.all(first.map((attempt) => attempt.kind === 'new' ? attempt.publishing : undefined))
  t.equal(follow(idempotency, '2', 'after', hang).kind, 'new', 'once they settled, the oldest make room')
})

t.test('accepted keys make room before failed ones, whose retry would be a new notification', async (t) => {
  const idempotency = cache({ maxBytes: 64 * 1024, maxBytesPerUser: 4 * 1024 })
  const failed = await settled(idempotency, '2', 'failed', async () => { throw new Error('Kafka down') })
  for (let i = 0; i < 40; i++) await settled(idempotency, '2', `ok-${i}`)
  const retry = follow(idempotency, '2', 'failed')
  t.equal(retry.kind, 'retry', 'the failed key outlived newer accepted ones')
  t.equal(idOf(retry), idOf(failed), 'and its retry publishes the same notification')
})
