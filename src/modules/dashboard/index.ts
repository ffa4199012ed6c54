import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'
import { type SessionRouteOptions, sessionRoute } from './session-route.ts'

const here = dirname(fileURLToPath(import.meta.url))

/**
 * The browser files: next to this module when run from source (tsx); the compiled module in
 * dist/src/modules/dashboard/ uses the source folder, since tsc copies no static files.
 */
const PUBLIC_DIRS = [join(here, 'public'), resolve(here, '../../../../src/modules/dashboard/public')]

/** uPlot's dist folder, resolved through its package so a hoisted or nested install both work. */
const uplotDir = dirname(createRequire(import.meta.url).resolve('uplot'))

/** authDisabled (AUTH_DISABLED): the UI then skips the login. */
export type DashboardOptions = SessionRouteOptions

/**
 * The web dashboard: plain ES modules and CSS from `public/` at `/`, uPlot's minified browser build
 * straight from node_modules at `/vendor/uplot/`, and `GET /api/session` (the caller's role). No
 * build step. Only files present at start are served (`wildcard: false`), so any other path still
 * gets the JSON 404.
 */
export const dashboardPlugin: FastifyPluginAsync<DashboardOptions> = async (app, options) => {
  await app.register(sessionRoute, options)
  const publicDir = PUBLIC_DIRS.find((dir) => existsSync(join(dir, 'index.html')))
  if (!publicDir) {
    app.log.warn({ looked_in: PUBLIC_DIRS }, 'dashboard files not found: the web UI is not served')
    return
  }
  await app.register(fastifyStatic, {
    root: publicDir,
    prefix: '/',
    wildcard: false,
    decorateReply: false,
    index: 'index.html',
  })
  await app.register(fastifyStatic, {
    root: uplotDir,
    prefix: '/vendor/uplot/',
    wildcard: false,
    decorateReply: false,
    index: false,
    globIgnore: ['**/*.cjs.js', '**/*.esm.js', '**/*.d.ts', '**/uPlot.iife.js'],
  })
}
