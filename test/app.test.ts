import { STATUS_CODES } from 'node:http'
import t from 'tap'
import { FakeBus } from './helpers/fake-bus.js'
import { startGateway } from './helpers/gateway.js'

t.test('errors raised before or outside the routes are answered from the catalogue too', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const cases = [
    // Fastify refuses it before routing, with a code of its own (FST_ERR_BAD_URL) unless told otherwise.
    { what: 'an undecodable path', url: '/%zz', status: 400, code: 'INVALID_QUERY', message: '\'/%zz\' is not a valid url component' },
    { what: 'no such route', url: '/api/nope', status: 404, code: 'NOT_FOUND', message: 'Route GET /api/nope not found' },
    // @fastify/static answers these with 416, 412 and 403 of its own.
    { what: 'a Range the page\'s files cannot satisfy', url: '/style.css', headers: { range: 'bytes=99999999-' }, status: 400, code: 'INVALID_HEADER', message: 'Range Not Satisfiable' },
    { what: 'an If-Match they do not satisfy', url: '/style.css', headers: { 'if-match': '"another-version"' }, status: 400, code: 'INVALID_HEADER', message: 'Precondition Failed' },
    { what: 'a path out of the page\'s folders', url: '/js/..%2f..%2fpackage.json', status: 403, code: 'FORBIDDEN', message: 'Forbidden' }
  ]
  for (const { what, url, headers = {}, status, code, message } of cases) {
    const response = await app.inject({ method: 'GET', url, headers })
    t.same({ status: response.statusCode, body: response.json() }, { status, body: { statusCode: status, error: STATUS_CODES[status], message, code } }, what)
  }
})
