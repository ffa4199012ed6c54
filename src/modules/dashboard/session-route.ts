import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { MeterBroker } from '../../platform/mqtt/index.ts'
import { ROLES } from '../auth/index.ts'

const Session = Type.Object({
  auth_enabled: Type.Boolean({ description: 'false when the server runs with AUTH_DISABLED=true' }),
  role: Type.Union([Type.Enum([...ROLES]), Type.Null()], {
    description: 'role of the bearer token; null when authentication is off',
  }),
  name: Type.Union([Type.String(), Type.Null()], { description: 'name of the token; null when unknown' }),
  version: Type.String({ description: 'version of the server' }),
  broker: Type.Object(
    {
      url: Type.Union([Type.String(), Type.Null()], {
        description: 'external broker a meter connects to; null: the embedded broker on this host',
      }),
      port: Type.Union([Type.Integer(), Type.Null()], { description: 'port of the embedded broker' }),
      tls_port: Type.Union([Type.Integer(), Type.Null()], {
        description: 'TLS port of the embedded broker (MQTT_TLS_PORT)',
      }),
      device_auth: Type.Enum(['token', 'mtls', 'none'], { description: 'MQTT_DEVICE_AUTH' }),
    },
    { description: 'where meters connect (docs/PROTOCOL.md)' },
  ),
})

export interface SessionRouteOptions {
  authDisabled: boolean
  version: string
  /** Asked per request: the embedded broker's port is known only once it listens. */
  broker: () => MeterBroker
}

/**
 * GET /api/session: who the dashboard is signed in as, so it shows only the controls the role may use,
 * and what it shows in its footer (server version, the broker address a meter should use).
 */
export const sessionRoute: FastifyPluginAsyncTypebox<SessionRouteOptions> = async (
  app,
  { authDisabled, version, broker },
) => {
  app.get(
    '/api/session',
    {
      schema: {
        tags: ['auth'],
        summary:
          'The role of the calling token, the server version and the broker for meters (any valid token)',
        response: { 200: Session },
      },
    },
    async (request) => ({
      auth_enabled: !authDisabled,
      role: request.principal?.role ?? null,
      name: request.principal?.name ?? null,
      version,
      broker: broker(),
    }),
  )
}
