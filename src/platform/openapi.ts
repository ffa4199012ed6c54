import swagger from '@fastify/swagger'
import apiReference from '@scalar/fastify-api-reference'
import type { FastifyInstance } from 'fastify'

/**
 * The OpenAPI document generated from every route's TypeBox schemas (/openapi.json) and a
 * reference UI (/docs). Registered before the routes so @fastify/swagger sees them all.
 */
export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'IoT Meter API',
        version,
        description:
          'Devices, time series, energy, raw archive, commands and alerts of rail-vehicle power meters. ' +
          'Every error is {"error": "..."}.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'API token (viewer, operator, admin)' },
        },
      },
      security: [{ bearer: [] }],
    },
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  await app.register(apiReference, { routePrefix: '/docs', configuration: { url: '/openapi.json' } })
}
