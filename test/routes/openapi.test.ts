import t from 'tap'
import { Validator } from '@seriousme/openapi-schema-validator'
import type { FastifyInstance } from 'fastify'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'

interface Operation {
  summary?: string
  security?: unknown[]
  requestBody?: unknown
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>
}
interface Document { openapi: string, paths: Record<string, Record<string, Operation>> }

/** Not the API: the page's files, Prometheus's /metrics, the tutorial's routes and the description itself. */
const NOT_API = /^\/(js\/.*|index\.html|style\.css|favicon\.svg|metrics|openapi\.json|docs(\/.*)?|send|notifications\/:userID|\*)?$/

/** Every route the app answers, as `METHOD /path`, read from Fastify's own route tree. */
function routesOf (app: FastifyInstance): string[] {
  const routes: string[] = []
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (.*?) \(([A-Z, ]+)\)$/.exec(line) ?? /^([│ ]*)[├└]── (.*)$/.exec(line)
    if (match === null) continue
    const depth = match[1]!.length / 4
    stack.length = depth
    stack.push(match[2]!)
    if (match[3] === undefined) continue
    const path = stack.join('').replace(/\/\/+/g, '/')
    for (const method of match[3].split(', ')) {
      if (method !== 'HEAD' && method !== 'OPTIONS') routes.push(`${method} ${path}`)
    }
  }
  return routes
}

t.test('GET /openapi.json: an OpenAPI 3.1 document that validates, with every route of the API, each fully described', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { COMPAT_TUTORIAL: '1' } })
  const response = await app.inject('/openapi.json')
  t.equal(response.statusCode, 200)
  const document = response.json<Document>()

  const validator = new Validator()
  const result = await validator.validate(document as unknown as Record<string, unknown>)
  t.same(result.errors ?? [], [], 'no validation error')
  t.ok(result.valid, 'valid against the OpenAPI schema')
  t.equal(validator.version, '3.1', 'of version 3.1')

  const api = routesOf(app).filter((route) => !NOT_API.test(route.split(' ')[1]!))
  t.ok(api.length >= 9, `the route tree was read (${api.join(', ')})`)
  // OpenAPI writes a path parameter as {id}, Fastify as :id.
  const described = Object.entries(document.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`))
  t.same(described.sort(), api.sort(), 'exactly the routes of the API: each one in it, nothing else')

  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const name = `${method.toUpperCase()} ${path}`
      t.ok(operation.summary, `${name}: a summary`)
      const statuses = Object.keys(operation.responses)
      const success = statuses.filter((status) => /^[12]\d\d$/.test(status))
      t.ok(success.length > 0, `${name}: its success answer`)
      t.ok(statuses.includes('4XX') || statuses.includes('503'), `${name}: its error answers`)
      for (const status of success.filter((status) => status !== '101')) {
        const content = operation.responses[status]?.content
        t.ok((content?.['application/json'] ?? content?.['text/event-stream'])?.schema, `${name} ${status}: the body's schema`)
      }
      if (method === 'post' && path !== '/api/tickets') t.ok(operation.requestBody, `${name}: its body's schema`)
    }
  }
  t.same(document.paths['/api/notifications']?.['post']?.security, [{ bearer: [] }], 'who may call a route: a bearer token')
})

t.test('GET /docs: the browsable description, reading /openapi.json', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const page = await app.inject('/docs/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  const initializer = await app.inject('/docs/static/swagger-initializer.js')
  t.match(initializer.body, /\/openapi\.json/, 'the UI loads this gateway\'s document')
})
