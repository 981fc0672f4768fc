import t from 'tap'
import { EventStreamReader, eventStreamTransport } from '../../client/transport-sse.js'
import type { TransportEnd } from '../../client/transport.js'
import type { ServerFrame } from '../../client/types.js'

t.test('the reader joins data lines, skips comments and other fields, and copes with any chunking and line break', async (t) => {
  const text = ': heartbeat\n\nevent: ready\nid: e.1\ndata: {"a":\r\ndata: 1}\r\n\r\nevent: ping\ndata:{"b":2}\r\rdata: {"c":3}\n\n'
  for (const size of [1, 2, 5, text.length]) {
    const seen: string[] = []
    const reader = new EventStreamReader((data) => seen.push(data))
    for (let i = 0; i < text.length; i += size) reader.push(text.slice(i, i + size))
    t.same(seen, ['{"a":\n1}', '{"b":2}', '{"c":3}'], `chunks of ${size}`)
  }
})

/** A fetch that answers /sse with `status` and these chunks, recording what it was asked. */
function fakeFetch (status: number, chunks: string[], body = ''): { fetch: typeof fetch, asked: Array<{ url: string, headers: Record<string, string> }> } {
  const asked: Array<{ url: string, headers: Record<string, string> }> = []
  return {
    asked,
    fetch: async (input, init) => {
      asked.push({ url: String(input), headers: init?.headers as Record<string, string> })
      if (status !== 200) return new Response(body, { status, headers: { 'content-type': 'application/json' } })
      const encoder = new TextEncoder()
      return new Response(new ReadableStream({
        start (controller) {
          for (const chunk of chunks) controller.enqueue(encoder.encode(chunk))
          controller.close()
        }
      }), { status })
    }
  }
}

function run (fetchImpl: typeof fetch, since: { cursor: string, seq: number } | null = null): Promise<{ frames: ServerFrame[], end: TransportEnd }> {
  const frames: ServerFrame[] = []
  return new Promise((resolve) => {
    eventStreamTransport('http://gateway.test', fetchImpl)({ token: 'tok', since }, {
      onFrame: (frame) => frames.push(frame),
      onEnd: (end) => resolve({ frames, end })
    })
  })
}

t.test('a stream: the token in the header, since in the query, frames out, the close event as the end\'s code', async (t) => {
  const { fetch, asked } = fakeFetch(200, [
    'event: ready\ndata: {"type":"ready","seq":1}\n\n',
    'event: close\ndata: {"type":"close","code":1001,"reason":"server shutting down"}\n\n'
  ])
  const { frames, end } = await run(fetch, { cursor: 'e.1', seq: 1 })
  t.same(asked, [{ url: 'http://gateway.test/sse?since=e.1', headers: { accept: 'text/event-stream', authorization: 'Bearer tok' } }])
  t.same(frames, [{ type: 'ready', seq: 1 }], 'the close event is not a frame')
  t.same(end, { code: 1001, reason: 'server shutting down', opened: true })
})

t.test('a stream that ends without a close event lost its connection (1006)', async (t) => {
  const { end } = await run(fakeFetch(200, ['event: ping\ndata: {"type":"ping"}\n\n']).fetch)
  t.same(end, { code: 1006, reason: '', opened: true })
})

t.test('refusals: 401 ends as 4001 (renew the token), others with their status and the gateway\'s message', async (t) => {
  t.same((await run(fakeFetch(401, [], '{"code":"TOKEN_EXPIRED","message":"Token expired"}').fetch)).end, { code: 4001, reason: 'Token expired', opened: false, status: 401 })
  t.same((await run(fakeFetch(403, [], '{"code":"FORBIDDEN","message":"Origin not allowed"}').fetch)).end, { code: 1006, reason: 'Origin not allowed', opened: false, status: 403 })
})

t.test('no answer at all ends as 1006, not opened', async (t) => {
  const { end } = await run(async () => { throw new TypeError('fetch failed') })
  t.same(end, { code: 1006, reason: '', opened: false })
})
