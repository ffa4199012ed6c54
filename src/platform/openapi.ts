import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import swagger from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'

/**
 * The reference UI's browser bundle, shipped inside @scalar/fastify-api-reference. Its plugin is not
 * registered: its page starts the UI with an inline script, which the strict Content-Security-Policy
 * (script-src 'self') blocks. /docs/ below loads the bundle and its start-up script as files instead.
 */
const scalarBundle = join(
  dirname(createRequire(import.meta.url).resolve('@scalar/fastify-api-reference')),
  'js',
  'standalone.js',
)

const page = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>IoT Meter API reference</title>
    <link rel="icon" href="data:," />
  </head>
  <body>
    <div id="app" data-url="/openapi.json"></div>
    <script src="/docs/js/scalar.js"></script>
    <script src="/docs/js/start.js"></script>
  </body>
</html>
`

/**
 * Nothing leaves the server's origin (CSP connect-src/font-src 'self'): no CDN fonts, no telemetry,
 * and no "Ask AI" agent, which Scalar turns on for localhost and which talks to proxy.scalar.com.
 */
const start = `Scalar.createApiReference('#app', {
  url: document.getElementById('app').dataset.url,
  withDefaultFonts: false,
  hideClientButton: true,
  telemetry: false,
  agent: { disabled: true },
})
`

/** Whether a route needs a bearer token (undefined: authentication is off, no route says anything). */
export type SecurityOf = (method: string, url: string) => 'bearer' | 'public'

/**
 * The OpenAPI document generated from every route's TypeBox schemas (/openapi.json) and a
 * reference UI (/docs). Registered before the routes so @fastify/swagger sees them all.
 * `securityOf` marks every operation: `[{ bearerAuth: [] }]` or `[]` (public).
 */
export async function registerOpenApi(
  app: FastifyInstance,
  version: string,
  securityOf?: SecurityOf,
): Promise<void> {
  await app.register(swagger, {
    transform: ({ schema, url, route }) => {
      if (!securityOf) return { schema, url }
      const method = Array.isArray(route.method) ? route.method[0] : route.method
      const security = securityOf(String(method), route.url) === 'public' ? [] : [{ bearerAuth: [] }]
      return { schema: { ...schema, security } as typeof schema, url }
    },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'IoT Meter API',
        version,
        description:
          'Devices, time series, energy, raw archive, commands and alerts of rail-vehicle power meters. ' +
          'Every error is {"error": "..."}. Send `Authorization: Bearer <token>`; see /docs for the roles.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'API token (viewer, operator, admin)' },
        },
      },
    },
  })
  const hide = { schema: { hide: true } }
  app.get('/openapi.json', hide, async () => app.swagger())
  app.get('/docs', hide, async (_request, reply) => reply.redirect('/docs/', 301))
  app.get('/docs/', hide, async (_request, reply) => reply.type('text/html; charset=utf-8').send(page))
  app.get('/docs/js/start.js', hide, async (_request, reply) =>
    reply.type('application/javascript; charset=utf-8').send(start),
  )
  let bundle: Promise<Buffer> | undefined
  app.get('/docs/js/scalar.js', hide, async (_request, reply) => {
    bundle ??= readFile(scalarBundle)
    return reply
      .type('application/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(await bundle)
  })
}
