import type { User } from '../directory.js'
import { ErrorCode, RequestError } from '../errors.js'
import { RecordTooLargeError } from '../kafka/errors.js'
import { MAX_MESSAGE_LENGTH, messageNotification, type Notification } from '../notification.js'
import type { RoutePlugin } from './schemas.js'

const HISTORY_LIMIT = 100

/**
 * The Go tutorial's two routes, with its status codes and JSON shapes, so its curl commands work
 * here. They take no token, so they are registered only with COMPAT_TUTORIAL=1.
 */
const tutorialRoutes: RoutePlugin = async (app, { directory, bus, inbox, limits }) => {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  // Not in the OpenAPI document: they answer in the tutorial's own shapes, off by default.
  app.post('/send', {
    onRequest: limits.perIp,
    schema: {
      hide: true,
      body: {
        type: 'object',
        required: ['fromID', 'toID', 'message'],
        properties: {
          fromID: { type: 'string', minLength: 1 },
          toID: { type: 'string', minLength: 1 },
          message: { type: 'string', minLength: 1, maxLength: MAX_MESSAGE_LENGTH }
        }
      }
    },
    attachValidation: true
  }, async (request, reply) => {
    if (request.validationError !== undefined) {
      return reply.code(400).send({ message: `invalid form: ${request.validationError.message}` })
    }
    const from = directory.get(request.body.fromID)
    const to = directory.get(request.body.toID)
    if (from === undefined || to === undefined) return reply.code(404).send({ message: 'User not found' })
    try {
      await bus.publish([messageNotification(from, to, request.body.message)], request.deadline)
    } catch (error) {
      if (!(error instanceof RecordTooLargeError)) throw error
      throw new RequestError(ErrorCode.RECORD_TOO_LARGE,
        `body/message is too long: the notification would be a Kafka record of ${error.bytes} bytes, more than the ${error.limit} bytes a record may have`, { cause: error })
    }
    return { message: 'Notification sent successfully!' }
  })

  app.get('/notifications/:userID', {
    schema: { hide: true, params: { type: 'object', required: ['userID'], properties: { userID: { type: 'string' } } } }
  }, async (request) => {
    const user = directory.get(request.params.userID)
    // Like the tutorial, an unknown user simply has no notifications.
    const items = user === undefined ? [] : (await inbox.history(user.id, HISTORY_LIMIT)).items
    if (user === undefined || items.length === 0) return { message: 'No notifications found for user', notifications: [] }
    return { notifications: items.reverse().map(({ notification }) => tutorialShape(notification, user)) }
  })
}

/** The tutorial's `{ from, to, message }`, with numeric ids where ours are numeric (as in its Go structs). */
function tutorialShape (notification: Notification, recipient: User): { from: unknown, to: unknown, message: string } {
  return {
    from: notification.actor === null ? null : tutorialUser(notification.actor),
    to: tutorialUser(recipient),
    message: notification.message
  }
}

function tutorialUser (user: User): { id: number | string, name: string } {
  return { id: /^\d{1,15}$/.test(user.id) ? Number(user.id) : user.id, name: user.name }
}

export default tutorialRoutes
