import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'
import t from 'tap'
import fc from 'fast-check'
import type { WebSocket } from 'ws'
import { ErrorCode } from '../server/errors.js'
import { FakeBus } from './helpers/fake-bus.js'
import { startGateway } from './helpers/gateway.js'

const SEED = 42
const WARM_UP_REQUESTS = 1_500
const REQUESTS = 10_000
const SOCKETS = 1_300
/** A leak of even 3 KB a request would show as 30 MB over the run; noise stays far below. */
const HEAP_SLACK_BYTES = 24 * 1024 * 1024
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const
const ROUTES = [
  '/', '/index.html', '/style.css', '/favicon.svg', '/js/main.js', '/healthz', '/readyz', '/metrics',
  '/api/users', '/api/sessions', '/api/follows', '/api/notifications', '/api/notifications/read', '/ws'
] as const
const UUID = 'abcdef01-89ab-7def-8123-456789abcdef'
const CATALOGUE: readonly unknown[] = Object.values(ErrorCode)

type Method = typeof METHODS[number]
interface FuzzRequest {
  method: Method
  url: string
  headers: Record<string, string>
  body: string | undefined
}

/** A full collection, so heap samples measure what is retained, not garbage not yet collected. */
function collectGarbage (): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed !== undefined) return exposed
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

async function retainedHeap (gc: () => void): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    gc()
    samples.push(process.memoryUsage().heapUsed)
  }
  return Math.min(...samples)
}

/** What the wire would carry for a string: its UTF-8 bytes, with no CR, LF or NUL (they end a header). */
const headerSafe = (text: string): string => Buffer.from(text, 'utf8').toString('latin1').replace(/[\r\n\0]/g, '')

/** JSON text for an object whose keys may be `__proto__` or `constructor` (JSON.stringify would drop or reshape them). */
const objectText = (entries: Array<[string, unknown]>): string =>
  `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value) ?? 'null'}`).join(',')}}`

/** `arbitrary` with probability `p` (in tenths), undefined otherwise. */
function sometimes<T> (arbitrary: fc.Arbitrary<T>, p: number): fc.Arbitrary<T | undefined> {
  const tenths = Math.round(p * 10)
  return fc.oneof({ weight: tenths, arbitrary }, { weight: 10 - tenths, arbitrary: fc.constant(undefined) })
}

function arbitraries (tokens: string[]) {
  const validToken = fc.constantFrom(...tokens)
  const token = fc.oneof(
    { weight: 6, arbitrary: validToken },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.tuple(validToken, fc.nat(), fc.constantFrom('A', 'B', '.', '-', '_')).map(([valid, at, char]) => valid.slice(0, at % valid.length) + char + valid.slice((at % valid.length) + 1)) },
    { weight: 1, arbitrary: validToken.map((valid) => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${valid.split('.')[1] ?? ''}.`) },
    { weight: 1, arbitrary: fc.nat({ max: 12_000 }).map((length) => 'e'.repeat(length)) }
  )
  const authorization = fc.oneof(
    { weight: 8, arbitrary: token.map((value) => `Bearer ${value}`) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 60 }) },
    { weight: 1, arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'bearer x', 'Basic MTox', 'Bearer a b', 'Bearer \u00e9') }
  )
  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/json') },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'application/json; charset=utf-8', 'application/json; charset=latin1', 'APPLICATION/JSON', 'application/json;;;',
        'application/vnd.api+json', 'text/plain', 'text/html', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
        'application/xml', 'application/octet-stream', '', ';', 'application/', '*/*'
      )
    },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) }
  )
  const idempotencyKey = fc.oneof(
    fc.uuid(),
    fc.stringMatching(/^[\x21-\x7e]{1,20}$/),
    fc.string({ unit: 'grapheme', maxLength: 30 }),
    fc.nat({ max: 400 }).map((length) => 'k'.repeat(length)),
    fc.constantFrom('', ' ', 'a b', 'retry-1', 'retry-1 ')
  )
  const headers = fc.record({
    authorization: sometimes(authorization, 0.8),
    'content-type': sometimes(contentType, 0.8),
    'idempotency-key': sometimes(idempotencyKey, 0.3),
    origin: sometimes(fc.constantFrom('https://evil.example', 'null', 'http://localhost:80'), 0.1),
    accept: sometimes(fc.constantFrom('*/*', 'text/html', 'application/json', '\u00ff'), 0.2)
  })

  const text = fc.oneof(fc.string({ maxLength: 70 }), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }))
  const id = fc.oneof({ weight: 3, arbitrary: fc.constantFrom('1', '2', '3', '4', '99', '', 'x'.repeat(64), 'x'.repeat(65)) }, { weight: 2, arbitrary: text })
  const cursor = fc.oneof(fc.nat().map(String), fc.constantFrom('0', '999999999999999', '9999999999999999', '-1', '1e3', '0x10', 'NaN', ''), text)
  const scalar = fc.oneof(
    fc.integer(), fc.double(), fc.boolean(), fc.constant(null), text,
    fc.nat({ max: 20_000 }).map((length) => 'x'.repeat(length)),
    fc.constantFrom(UUID, '__proto__', 'constructor', '\u0000', '\uffff', '\ud800', '😀'.repeat(50))
  )
  const value: fc.Arbitrary<unknown> = fc.oneof(
    { weight: 4, arbitrary: scalar },
    { weight: 2, arbitrary: id },
    { weight: 1, arbitrary: fc.array(fc.oneof(id, scalar), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), scalar, { maxKeys: 3 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) }
  )
  const key = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('followeeId', 'followerId', 'userId', 'upTo', 'ids') },
    { weight: 2, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '') },
    { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }
  )
  const validBody = fc.oneof(
    id.map((followeeId) => [['followeeId', followeeId]] as Array<[string, unknown]>),
    fc.tuple(id, id).map(([followeeId, followerId]) => [['followeeId', followeeId], ['followerId', followerId]] as Array<[string, unknown]>),
    id.map((userId) => [['userId', userId]] as Array<[string, unknown]>),
    cursor.map((upTo) => [['upTo', upTo]] as Array<[string, unknown]>),
    fc.array(fc.oneof(fc.uuid(), fc.constant(UUID), text), { maxLength: 5 }).map((ids) => [['ids', ids]] as Array<[string, unknown]>)
  )
  // A valid body with fields mutated: values swapped for others, keys added (prototype keys too).
  const objectBody = fc.tuple(validBody, fc.array(fc.tuple(key, value), { maxLength: 3 }), fc.boolean())
    .map(([base, extra, mutate]) => objectText(mutate ? [...base.map(([name]) => [name, extra[0]?.[1]] as [string, unknown]), ...extra.slice(1)] : [...base, ...extra]))
  const mutation = fc.record({ kind: fc.constantFrom('truncate', 'insert', 'delete', 'duplicate', 'none'), at: fc.nat(), char: fc.string({ minLength: 1, maxLength: 2, unit: 'binary' }) })
  const mutated = fc.tuple(objectBody, mutation).map(([body, { kind, at, char }]) => {
    const where = body.length === 0 ? 0 : at % body.length
    switch (kind) {
      case 'truncate': return body.slice(0, where)
      case 'insert': return body.slice(0, where) + char + body.slice(where)
      case 'delete': return body.slice(0, where) + body.slice(where + 1)
      case 'duplicate': return body.slice(0, where) + body.slice(where / 2)
      default: return body
    }
  })
  const body = fc.option(fc.oneof(
    { weight: 6, arbitrary: mutated },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((json) => JSON.stringify(json)) },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', 'null', '[]', '{}', '"2"', '{"followeeId":"2"', 'followeeId=2', '\u0000', '\ufeff{"followeeId":"2"}') },
    { weight: 1, arbitrary: fc.nat({ max: 8_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)) },
    { weight: 1, arbitrary: fc.nat({ max: 40_000 }).map((length) => JSON.stringify({ followeeId: '2', padding: 'p'.repeat(length) })) }
  ), { nil: undefined, freq: 6 })

  const queryKey = fc.oneof(fc.constantFrom('limit', 'before', 'since', 'token', 'userId', '__proto__', 'constructor', 'limit[]'), fc.string({ maxLength: 8 }))
  const queryValue = fc.oneof(cursor, fc.integer().map(String), fc.constantFrom('1', '50', '100', '101', '0', '-5', '1.5', 'true', ''), token)
  const query = fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    {
      weight: 6,
      arbitrary: fc.array(fc.tuple(queryKey, queryValue, fc.boolean()), { maxLength: 4 })
        .map((pairs) => `?${pairs.map(([name, value, raw]) => raw ? `${name}=${value.replace(/[^\x21-\x7e]/g, '')}` : `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join('&')}`)
    },
    { weight: 1, arbitrary: fc.constantFrom('?', '?&&', '?=', '?limit', '?limit=%zz', '?a=%', `?token=${'t'.repeat(5000)}`) }
  )
  const path = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...ROUTES) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.constantFrom(...ROUTES), fc.constantFrom('/', '//', '/..', '/../..', '/%2e%2e/package.json', '%00', '%zz', '%', '.json', '/x', ';a=b', '%2F', '/%E2%82'))
        .map(([route, suffix]) => route + suffix)
    },
    { weight: 1, arbitrary: fc.constantFrom('/API/FOLLOWS', '//api/follows', '/api//follows', '/api/follows/', '/js/../../package.json', '/js/%2e%2e/%2e%2e/package.json', '/.env', '/web/index.html') },
    { weight: 1, arbitrary: fc.webPath().map((random) => random.startsWith('/') ? random : `/${random}`) }
  )
  const method = fc.oneof({ weight: 8, arbitrary: fc.constantFrom<Method>('GET', 'POST') }, { weight: 2, arbitrary: fc.constantFrom(...METHODS) })

  const random: fc.Arbitrary<FuzzRequest> = fc.record({ method, path, query, headers, body }).map(({ method, path, query, headers, body }) => ({
    method,
    url: path + query,
    headers: Object.fromEntries(Object.entries(headers).filter(([, value]) => value !== undefined).map(([name, value]) => [name, headerSafe(value!)])),
    body
  }))

  // Requests aimed at a real route, mostly well-formed, so the fuzz reaches the handlers too.
  const someKey = sometimes(fc.oneof({ weight: 3, arbitrary: fc.uuid() }, { weight: 1, arbitrary: idempotencyKey }), 0.5)
  const knownId = fc.constantFrom('1', '2', '3', '4')
  const aimedBody = (valid: fc.Arbitrary<Array<[string, unknown]>>): fc.Arbitrary<string> =>
    fc.oneof({ weight: 3, arbitrary: valid.map(objectText) }, { weight: 1, arbitrary: mutated })
  const endpoints: Array<fc.Arbitrary<{ method: Method, path: string, query: string, body: string | undefined }>> = [
    fc.record({
      method: fc.constant<Method>('POST'),
      path: fc.constant('/api/follows'),
      query: fc.constant(''),
      body: aimedBody(fc.tuple(knownId, sometimes(knownId, 0.1))
        .map(([followeeId, followerId]): Array<[string, unknown]> => followerId === undefined ? [['followeeId', followeeId]] : [['followeeId', followeeId], ['followerId', followerId]]))
    }),
    fc.record({ method: fc.constant<Method>('POST'), path: fc.constant('/api/sessions'), query: fc.constant(''), body: aimedBody(knownId.map((userId): Array<[string, unknown]> => [['userId', userId]])) }),
    fc.record({ method: fc.constant<Method>('GET'), path: fc.constant('/api/notifications'), query, body: fc.constant(undefined) }),
    fc.record({
      method: fc.constant<Method>('POST'),
      path: fc.constant('/api/notifications/read'),
      query: fc.constant(''),
      body: aimedBody(fc.oneof(
        cursor.map((upTo): Array<[string, unknown]> => [['upTo', upTo]]),
        fc.array(fc.uuid(), { minLength: 1, maxLength: 5 }).map((ids): Array<[string, unknown]> => [['ids', ids]])
      ))
    }),
    fc.record({ method: fc.constant<Method>('GET'), path: fc.constantFrom('/api/users', '/healthz', '/readyz', '/metrics', '/'), query, body: fc.constant(undefined) })
  ]
  const aimed: fc.Arbitrary<FuzzRequest> = fc.tuple(fc.oneof(...endpoints), validToken, someKey, sometimes(headers, 0.2))
    .map(([{ method, path, query, body }, valid, key, junk]) => ({
      method,
      url: path + query,
      headers: {
        authorization: `Bearer ${valid}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(key === undefined ? {} : { 'idempotency-key': headerSafe(key) }),
        ...Object.fromEntries(Object.entries(junk ?? {}).filter(([, value]) => value !== undefined).map(([name, value]) => [name, headerSafe(value!)]))
      },
      body
    }))
  const request = fc.oneof(random, aimed)

  const frame = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 300 }),
    fc.jsonValue({ maxDepth: 3 }).map((json) => JSON.stringify(json) ?? 'null'),
    fc.constantFrom('{"type":"ping"}', '{"type":"subscribe","userId":"2"}', '{"type":"read","upTo":"1"}', '', 'pong'),
    fc.nat({ max: 2048 }).map((length) => 'x'.repeat(length)),
    fc.uint8Array({ maxLength: 2048 }).map((bytes) => Buffer.from(bytes)),
    fc.nat({ max: 2048 }).map((length) => Buffer.alloc(length, 0xff))
  )
  const wsQuery = fc.oneof(
    { weight: 8, arbitrary: fc.tuple(validToken, sometimes(fc.nat({ max: 100_000 }).map(String), 0.3)).map(([valid, since]) => `?token=${valid}${since === undefined ? '' : `&since=${since}`}`) },
    { weight: 1, arbitrary: fc.tuple(validToken, cursor).map(([valid, since]) => `?token=${valid}&since=${encodeURIComponent(since)}`) },
    { weight: 1, arbitrary: query }
  )
  return { request, frame, wsQuery }
}

interface Outcome { status: number, body: string, contentType: unknown }

/** Throws (for fast-check to shrink and report) unless the answer is a non-5xx with a proper error body. */
function check (request: FuzzRequest, outcome: Outcome): void {
  const where = `${request.method} ${request.url.slice(0, 200)} → ${outcome.status}`
  if (outcome.status >= 500) throw new Error(`${where}: a 5xx: ${outcome.body.slice(0, 300)}`)
  if (outcome.status < 400 || request.method === 'HEAD') return
  let parsed: unknown
  try {
    parsed = JSON.parse(outcome.body)
  } catch {
    throw new Error(`${where}: the error body is not JSON (${JSON.stringify(outcome.body.slice(0, 100))}, ${String(outcome.contentType)})`)
  }
  const error = parsed as { statusCode?: unknown, code?: unknown, message?: unknown }
  if (error.statusCode !== outcome.status || !CATALOGUE.includes(error.code) || typeof error.message !== 'string') {
    throw new Error(`${where}: the error body lacks statusCode, a catalogue code or message: ${outcome.body.slice(0, 300)}`)
  }
}

/**
 * GET /ws without an upgrade, for a valid token, answered 404 with an empty body: how that request
 * broke the error shape before /ws answered 426 UPGRADE_REQUIRED. Counted apart, so that a return
 * of it is named as such (the last subtest) rather than as one more bad error body.
 */
const isPlainWsGet = (request: FuzzRequest, outcome: Outcome): boolean =>
  request.method === 'GET' && /^\/ws(\?|$)/.test(request.url) && outcome.status === 404 && outcome.body === ''

t.test(`fuzz: ${REQUESTS} random and mutated requests, and ${SOCKETS} WebSocket upgrades with a random frame each, seeded`, async (t) => {
  const rejections: unknown[] = []
  const onRejection = (reason: unknown): void => { rejections.push(reason) }
  process.on('unhandledRejection', onRejection)
  t.teardown(() => { process.off('unhandledRejection', onRejection) })

  const bus = new FakeBus()
  const { app } = await startGateway(t, { bus, listen: false })
  const tokens: string[] = []
  for (const userId of ['1', '2', '3', '4']) {
    tokens.push((await app.inject({ method: 'POST', url: '/api/sessions', payload: { userId } })).json<{ token: string }>().token)
  }
  const { request, frame, wsQuery } = arbitraries(tokens)
  const plainWsGets: string[] = []
  const counts = { requests: 0, accepted: 0, byStatus: new Map<number, number>() }

  const send = async (fuzz: FuzzRequest): Promise<void> => {
    const response = await app.inject({
      method: fuzz.method,
      url: fuzz.url,
      headers: fuzz.headers,
      ...(fuzz.body === undefined ? {} : { payload: fuzz.body })
    })
    counts.requests++
    counts.byStatus.set(response.statusCode, (counts.byStatus.get(response.statusCode) ?? 0) + 1)
    if (response.statusCode === 202) counts.accepted++
    const outcome = { status: response.statusCode, body: response.body, contentType: response.headers['content-type'] }
    if (isPlainWsGet(fuzz, outcome)) {
      plainWsGets.push(fuzz.url)
      return
    }
    check(fuzz, outcome)
  }
  const gc = collectGarbage()

  await fc.assert(fc.asyncProperty(request, send), { seed: SEED - 1, numRuns: WARM_UP_REQUESTS })
  const heapAfterWarmUp = await retainedHeap(gc)

  await fc.assert(fc.asyncProperty(request, send), { seed: SEED, numRuns: REQUESTS })
  t.equal(counts.requests, WARM_UP_REQUESTS + REQUESTS, `${counts.requests} requests, none answered 5xx, every 4xx with statusCode, a catalogue code and message`)
  t.ok(counts.accepted > 100, `the fuzz reached the handlers, not only the validators (${counts.accepted} follows accepted)`)
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...counts.byStatus].sort(([a], [b]) => a - b)))}`)

  let frames = 0
  let refusedUpgrades = 0
  await fc.assert(fc.asyncProperty(wsQuery, frame, async (query, data) => {
    let socket: WebSocket
    let closed!: Promise<number>
    let firstFrame!: Promise<unknown>
    try {
      socket = await app.injectWS(`/ws${query}`, {}, {
        onInit: (ws) => {
          closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)))
          firstFrame = new Promise((resolve) => ws.once('message', resolve))
        }
      })
    } catch (error) {
      const status = Number(/Unexpected server response: (\d+)/.exec((error as Error).message)?.[1])
      if (!(status >= 400 && status < 500)) throw new Error(`/ws${query.slice(0, 200)}: the upgrade failed with ${(error as Error).message}`)
      refusedUpgrades++
      return
    }
    try {
      await Promise.race([firstFrame, closed])
      socket.send(data)
      frames++
      const code = await closed
      const expected = Buffer.byteLength(data) > 1024 ? 1009 : 4500
      if (code !== expected) throw new Error(`a ${typeof data === 'string' ? 'text' : 'binary'} frame of ${Buffer.byteLength(data)} bytes: closed with ${code}, not ${expected}`)
    } finally {
      socket.terminate()
    }
  }), { seed: SEED, numRuns: SOCKETS })
  t.ok(frames >= 1_000, `${frames} frames sent, each answered with its close code (${refusedUpgrades} upgrades refused with a 4xx)`)

  // Past the run's own garbage: what the gateway keeps must not grow with every request.
  const heapAfterRun = await retainedHeap(gc)
  const growth = heapAfterRun - heapAfterWarmUp
  t.ok(growth < HEAP_SLACK_BYTES, `heap after ${REQUESTS} requests and ${SOCKETS} sockets grew ${(growth / 1024 / 1024).toFixed(1)} MB (bound ${HEAP_SLACK_BYTES / 1024 / 1024} MB)`)
  t.equal(app.hasDecorator('injectWS'), true)
  t.same(rejections, [], 'no unhandled rejection')

  t.test('GET /ws without an upgrade answers with the error shape', async (t) => {
    t.comment(`${plainWsGets.length} plain GET /ws requests with a valid token answered 404 with an empty body`)
    t.same(plainWsGets, [], 'none answered 404 with an empty body')
  })
})
