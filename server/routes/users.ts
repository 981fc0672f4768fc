import { type RoutePlugin, userRefSchema } from './schemas.js'

/** GET /api/users: the user directory. */
const usersRoutes: RoutePlugin = async (app, { directory }) => {
  app.get('/api/users', {
    schema: {
      response: {
        200: { type: 'object', required: ['users'], properties: { users: { type: 'array', items: userRefSchema } } }
      }
    }
  }, async () => ({ users: [...directory.list()] }))
}

export default usersRoutes
