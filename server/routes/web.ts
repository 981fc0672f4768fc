import { join } from 'node:path'
import fastifyStatic from '@fastify/static'
import { projectRoot } from '../project-root.js'
import type { RoutePlugin } from './schemas.js'

const PAGE_FILES = new Set(['/index.html', '/style.css', '/favicon.svg'])

/**
 * The live-feed page: web/index.html and its CSS at `/`, the compiled browser code at `/js/`, and
 * the client library it imports (client/) at `/client/`, for other pages to import too.
 */
const webRoutes: RoutePlugin = async (app) => {
  const root = projectRoot()
  await app.register(fastifyStatic, {
    root: join(root, 'web'),
    allowedPath: (pathName) => pathName === '/' || PAGE_FILES.has(pathName),
    index: 'index.html'
  })
  await app.register(fastifyStatic, {
    // web/tsconfig.json compiles from the repo root (the page reads server/feed/frames.ts's types):
    // its web/src lands in dist/web/web/src, and only that is served.
    root: join(root, 'dist', 'web', 'web', 'src'),
    prefix: '/js/',
    decorateReply: false
  })
  await app.register(fastifyStatic, {
    root: join(root, 'dist', 'web', 'client'),
    prefix: '/client/',
    decorateReply: false
  })
}

export default webRoutes
