import { preferencesFrame } from '../feed/frames.js'
import { MAX_MUTED } from '../inbox/types.js'
import { NOTIFICATION_TYPE_PATTERN } from '../notification.js'
import { authenticate } from './authenticate.js'
import { bearerSecurity, errorResponses, userIdSchema, type RoutePlugin } from './schemas.js'

const mutedSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['types', 'actors'],
  properties: {
    types: { type: 'array', maxItems: MAX_MUTED, uniqueItems: true, items: { type: 'string', pattern: NOTIFICATION_TYPE_PATTERN } },
    actors: { type: 'array', maxItems: MAX_MUTED, uniqueItems: true, items: userIdSchema }
  }
} as const

const preferencesSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['muted'],
  properties: { muted: mutedSchema }
} as const

const preferencesAnswer = {
  200: { description: 'The caller\'s preferences', ...preferencesSchema },
  ...errorResponses
} as const

/**
 * The caller's own preferences: the types and actors they mute. Stored in the inbox (every
 * gateway reads the same); a notification consumed after a change that the list mutes is not
 * stored, pushed or counted for them. Not a state change of the feed (no rev): every tab gets a
 * `preferences` frame.
 */
const preferencesRoutes: RoutePlugin = async (app, { tokens, inbox, tail, limits }) => {
  const signedIn = authenticate(tokens)

  app.get('/api/preferences', {
    onRequest: signedIn,
    schema: { summary: 'The caller\'s preferences (mute lists)', security: bearerSecurity, response: preferencesAnswer }
  }, async (request) => {
    return { muted: await inbox.preferences(request.principal.user.id) }
  })

  app.put('/api/preferences', {
    onRequest: [limits.perIp, signedIn, limits.perUser],
    schema: { summary: 'Replace the caller\'s preferences (mute lists)', security: bearerSecurity, body: preferencesSchema, response: preferencesAnswer }
  }, async (request) => {
    const userId = request.principal.user.id
    const muted = await inbox.setPreferences(userId, { types: [...request.body.muted.types], actors: [...request.body.muted.actors] })
    tail.publish([{ userId, text: preferencesFrame(muted) }])
    return { muted }
  })
}

export default preferencesRoutes
