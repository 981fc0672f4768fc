import t from 'tap'
import { FakeBus } from './helpers/fake-bus.js'
import { startGateway } from './helpers/gateway.js'

t.test('errors raised before or outside the routes are answered from the catalogue too', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const answer = async (url: string, headers: Record<string, string> = {}): Promise<{ status: number, body: unknown }> => {
    const response = await app.inject({ method: 'GET', url, headers })
    return { status: response.statusCode, body: response.json() }
  }

  // Fastify refuses these before routing, with a code of its own (FST_ERR_BAD_URL) unless told otherwise.
  t.same(await answer('/%zz'), {
    status: 400,
    body: { statusCode: 400, error: 'Bad Request', message: '\'/%zz\' is not a valid url component', code: 'INVALID_QUERY' }
  }, 'an undecodable path')
  t.same(await answer('/api/nope'), {
    status: 404,
    body: { statusCode: 404, error: 'Not Found', message: 'Route GET /api/nope not found', code: 'NOT_FOUND' }
  }, 'no such route')
  t.same(await answer('/style.css', { range: 'bytes=99999999-' }), {
    status: 400,
    body: { statusCode: 400, error: 'Bad Request', message: 'Range Not Satisfiable', code: 'INVALID_HEADER' }
  }, 'a Range the page\'s files cannot satisfy (416 from @fastify/static)')
  t.same(await answer('/style.css', { 'if-match': '"another-version"' }), {
    status: 400,
    body: { statusCode: 400, error: 'Bad Request', message: 'Precondition Failed', code: 'INVALID_HEADER' }
  }, 'an If-Match they do not satisfy (412)')
  t.same(await answer('/js/..%2f..%2fpackage.json'), {
    status: 403,
    body: { statusCode: 403, error: 'Forbidden', message: 'Forbidden', code: 'FORBIDDEN' }
  }, 'a path out of the page\'s folders')
})
