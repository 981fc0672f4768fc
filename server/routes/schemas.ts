import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts'
import type { Config } from '../config.js'
import type { Services } from '../services.js'
import type { FeedSockets } from './feed-sockets.js'
import type { RateLimits } from './rate-limits.js'
import { userRefSchema, USER_ID_PATTERN } from '../directory.js'
import { CURSOR_PATTERN } from '../feed/cursor.js'
import { notificationSchema } from '../notification.js'

/** Fastify's error shape, the body of every 4xx and 5xx answer. */
export const errorSchema = {
  type: 'object',
  required: ['statusCode', 'error', 'message', 'code'],
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
    code: { type: 'string' }
  }
} as const

/** The error answers every route may give: its own 4xx, and 503 (shutting down, a dependency down) to any. */
export const errorResponses = {
  '4xx': { description: 'Refused: see `code` (docs/protocol.md)', ...errorSchema },
  '5xx': { description: 'Not now: see `code`; retry later', ...errorSchema }
} as const

export const userIdSchema = { type: 'string', pattern: USER_ID_PATTERN } as const
export const cursorSchema = { type: 'string', pattern: CURSOR_PATTERN } as const
export { notificationSchema, userRefSchema }

export const bearerSecurity = [{ bearer: [] }]

/** The `Idempotency-Key` header of the POSTs that take one: printable ASCII, as Stripe and the IETF draft allow; a UUID fits easily. */
export const idempotencyKeyHeaders = {
  type: 'object',
  properties: { 'idempotency-key': { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' } }
} as const

/** Every route plugin gets the app's services and config as its options. */
export type RoutePlugin = FastifyPluginAsyncJsonSchemaToTs<{ Options: AppContext }>
export type AppContext = Services & { config: Config, limits: RateLimits, feedSockets: FeedSockets }
