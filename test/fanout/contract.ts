// The behaviour every fan-out shares, run against each by its own test file (local-fanout.test.ts,
// redis-fanout.test.ts). tap's config excludes this file: it defines tests, it is not one.
import type { Test } from 'tap'
import type { Fanout, FanoutMessage, FanoutReceiver } from '../../server/fanout/types.js'
import { Waiters } from '../helpers/waiters.js'

/** A receiver that records what a fan-out hands it, and lets a test wait for it. */
export class RecordingReceiver implements FanoutReceiver {
  readonly delivered: FanoutMessage[] = []
  readonly resubscriptions: string[][] = []
  corkings = 0
  readonly #waiters = new Waiters()

  corked (deliveries: () => void): void {
    this.corkings++
    deliveries()
  }

  deliver (message: FanoutMessage): void {
    this.delivered.push(message)
    this.#waiters.wake()
  }

  resubscribed (userIds: readonly string[]): void {
    this.resubscriptions.push([...userIds])
    this.#waiters.wake()
  }

  /** Resolves once `done()` holds, checked after each delivery and resubscription; rejects after 5 s. */
  async until (what: string, done: () => boolean): Promise<void> {
    await this.#waiters.until(() => what, done)
  }

  /** Resolves once `count` messages were delivered in all. */
  async deliveries (count: number): Promise<FanoutMessage[]> {
    await this.until(`${count} deliveries (got ${this.delivered.length})`, () => this.delivered.length >= count)
    return this.delivered.slice(0, count)
  }
}

/** One gateway's fan-out with its receiver; `watch` resolves once frames for the user flow. */
export interface FanoutNode {
  fanout: Fanout
  receiver: RecordingReceiver
  watch (userId: string): Promise<void>
}

/** Makes a fan-out for the test `t`, closed at t's teardown. */
export type FanoutNodeFactory = (t: Test) => Promise<FanoutNode>

export function notification (userId: string, seq: number, text = `n${seq} for ${userId}`): FanoutMessage {
  return { userId, text: `{"type":"notification","text":${JSON.stringify(text)},"seq":${seq}}`, seq, timestamp: 1_700_000_000_000 + seq }
}

export function unread (userId: string, count: number): FanoutMessage {
  return { userId, text: `{"type":"unread","unread":${count}}` }
}

/** Each user's messages, in the order they came. */
export function perUser (messages: readonly FanoutMessage[]): Record<string, FanoutMessage[]> {
  const byUser: Record<string, FanoutMessage[]> = {}
  for (const message of messages) (byUser[message.userId] ??= []).push(message)
  return byUser
}

export interface ContractOptions {
  /**
   * False for a sharded fan-out (Redis Cluster): users on different shards travel on different
   * connections, so only each user's own frames keep their order. Default true.
   */
  orderedAcrossUsers?: boolean
}

export function fanoutContract (t: Test, newNode: FanoutNodeFactory, options: ContractOptions = {}): void {
  t.test('a publish reaches the receiver for watched users only, in publish order', async (t) => {
    const { fanout, receiver, watch } = await newNode(t)
    await watch('1')
    await watch('2')
    const batch = [notification('1', 1), notification('3', 1), notification('2', 1), notification('1', 2), unread('1', 2), notification('4', 7), notification('2', 2)]
    t.equal(await fanout.publish(batch), true, 'resolves true: handed on')
    const wanted = batch.filter(({ userId }) => userId === '1' || userId === '2')
    if (options.orderedAcrossUsers === false) t.same(perUser(await receiver.deliveries(wanted.length)), perUser(wanted), 'each watched user\'s frames, in order, as published')
    else t.same(await receiver.deliveries(wanted.length), wanted, 'the watched users\' frames, in order, as published')
    await fanout.publish([notification('2', 3)])
    t.same((await receiver.deliveries(wanted.length + 1)).at(-1), notification('2', 3))
    t.equal(receiver.delivered.length, wanted.length + 1, 'nothing for users 3 and 4 came in between')
  })

  t.test('a message keeps its text, seq and timestamp; a frame without seq stays without', async (t) => {
    const { fanout, receiver, watch } = await newNode(t)
    await watch('emma@example.com')
    const messages = [
      notification('emma@example.com', 41, 'multi\nline ✓ 😀 "quoted" \\ {}'),
      { userId: 'emma@example.com', text: '{"a":\n1}', seq: 42 },
      unread('emma@example.com', 0),
      { userId: 'emma@example.com', text: '' }
    ]
    await fanout.publish(messages)
    t.same(await receiver.deliveries(messages.length), messages)
  })

  t.test('unwatch stops a user\'s frames; watching again brings them back', async (t) => {
    const { fanout, receiver, watch } = await newNode(t)
    await watch('1')
    await watch('2')
    fanout.unwatch('1')
    // Published after the frame for 1: had that one come, it would have come first.
    await fanout.publish([notification('1', 1), notification('2', 1)])
    t.same(await receiver.deliveries(1), [notification('2', 1)], 'only the watched user')
    await watch('1')
    await fanout.publish([notification('1', 2)])
    t.same((await receiver.deliveries(2))[1], notification('1', 2), 'watched again')
  })

  t.test('watch and unwatch are idempotent', async (t) => {
    const { fanout, receiver, watch } = await newNode(t)
    await watch('1')
    fanout.watch('1')
    await watch('2')
    fanout.unwatch('1')
    fanout.unwatch('1')
    fanout.unwatch('9')
    await fanout.publish([notification('1', 1), notification('2', 1)])
    t.same(await receiver.deliveries(1), [notification('2', 1)], 'one unwatch undoes two watches')
    await fanout.publish([notification('2', 2)])
    t.same(await receiver.deliveries(2), [notification('2', 1), notification('2', 2)], 'each frame once for the user watched twice')
  })

  t.test('every watched user may be reached, and a working fan-out reports no reason to be unready', async (t) => {
    const { fanout, watch } = await newNode(t)
    await watch('1')
    t.equal(fanout.mayReach('1'), true)
    t.same(fanout.unreadyReasons(), [])
  })

  t.test('publish never rejects: an empty batch, and a publish after close, resolve', async (t) => {
    const { fanout, receiver, watch } = await newNode(t)
    await watch('1')
    t.equal(await fanout.publish([]), true, 'nothing to hand on: nothing lost')
    await fanout.close()
    await t.resolves(fanout.publish([notification('1', 1)]))
    await t.resolves(fanout.close(), 'a second close too')
    t.same(receiver.delivered, [], 'nothing was delivered')
  })
}
