// One gateway's delivery path, wired as server/services.ts wires it, for the tests of the feed
// above Kafka: a fan-out hands frames to the feed relay, the relay to each tab's socket, and the
// hub tells the fan-out whose frames are wanted here.
import type { User } from '../../server/directory.js'
import type { Fanout, FanoutReceiver } from '../../server/fanout/types.js'
import type { Cursor } from '../../server/feed/cursor.js'
import { FeedRelay, type DeliveryObserver } from '../../server/feed/relay.js'
import type { Tab } from '../../server/feed/tab.js'
import { Hub } from '../../server/hub/hub.js'
import type { Inbox } from '../../server/inbox/types.js'
import { fakeHubSocket, type FakeSocket } from './fake-socket.js'
import type { TestContext } from './gateway.js'
import { quiet } from './quiet-log.js'

/** The send bound of the tabs opened here: far above what any of these tests sends. */
export const BOUND = 1024 * 1024

export interface DeliveryPathOptions<F extends Fanout> {
  /** What the relay reads for catch-ups and gap fills. */
  inbox: Inbox
  /** Makes the fan-out that delivers to the relay. */
  fanout: (receiver: FanoutReceiver) => F
  observer?: DeliveryObserver
  /** The relay's ping interval (default: far longer than any of these tests). */
  pingMs?: number
}

export interface DeliveryPath<F extends Fanout> {
  hub: Hub
  relay: FeedRelay
  fanout: F
  /** Opens a tab of `user` as /ws does (with `since`: resumes from it); resolves once it is live. */
  open (user: User, since?: Cursor): Promise<{ socket: FakeSocket, tab: Tab }>
}

/** Builds the path for the test `t`; its hub and fan-out are stopped at t's teardown. */
export function deliveryPath<F extends Fanout> (t: TestContext, options: DeliveryPathOptions<F>): DeliveryPath<F> {
  const relay = new FeedRelay(options.inbox, { log: quiet, pingMs: options.pingMs ?? 60_000, ...(options.observer === undefined ? {} : { observer: options.observer }) })
  t.teardown(() => relay.stop())
  const fanout = options.fanout(relay)
  t.teardown(() => fanout.close())
  const hub = new Hub({ heartbeatMs: 60_000, onUserOnline: (userId) => fanout.watch(userId), onUserOffline: (userId) => fanout.unwatch(userId) })
  t.teardown(() => hub.stop())
  return {
    hub,
    relay,
    fanout,
    open: async (user, since) => {
      const { webSocket, socket } = fakeHubSocket(user.id, BOUND)
      hub.add(socket)
      return { socket: webSocket, tab: await relay.open(socket, user, since) }
    }
  }
}
