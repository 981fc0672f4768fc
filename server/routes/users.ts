import { type RoutePlugin, errorResponses, userRefSchema } from './schemas.js'

/** GET /api/users: the user directory. */
const usersRoutes: RoutePlugin = async (app, { directory }) => {
  app.get('/api/users', {
    schema: {
      summary: 'The user directory (USERS_FILE): the demo page\'s people',
      response: {
        200: { description: 'Every user the directory lists', type: 'object', required: ['users'], properties: { users: { type: 'array', items: userRefSchema } } },
        ...errorResponses
      }
    }
  }, async () => ({ users: [...directory.list()] }))
}

export default usersRoutes
