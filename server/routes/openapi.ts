import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { projectRoot } from '../project-root.js'

const DESCRIPTION = `Real-time notifications: Apache Kafka → a per-user inbox → WebSockets.

Errors are \`{ statusCode, error, message, code }\`, \`code\` from the catalogue in docs/protocol.md.
\`GET /ws\` is a WebSocket: its frames, catch-up and close codes are in docs/protocol.md.`

/**
 * The HTTP API described as OpenAPI 3.1, from the routes' own schemas: the document at
 * /openapi.json, a browsable UI at /docs. Register before the routes: the document is made of the
 * routes registered after it. The page's files and /metrics (Prometheus text) are not the API.
 */
export async function registerOpenApi (app: FastifyInstance): Promise<void> {
  const { version } = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'kafka-notify', version, description: DESCRIPTION, license: { name: 'MIT', identifier: 'MIT' } },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A user\'s token, or a service\'s (`scope` holds `notify:service`)' }
        }
      }
    }
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: { url: '/openapi.json' } })
}
