import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ROLES } from '../auth/index.ts'

const Session = Type.Object({
  auth_enabled: Type.Boolean({ description: 'false when the server runs with AUTH_DISABLED=true' }),
  role: Type.Union([Type.Enum([...ROLES]), Type.Null()], {
    description: 'role of the bearer token; null when authentication is off',
  }),
  name: Type.Union([Type.String(), Type.Null()], { description: 'name of the token; null when unknown' }),
})

/** GET /api/session: who the dashboard is signed in as, so it shows only the controls the role may use. */
export const sessionRoute: FastifyPluginAsyncTypebox<{ authDisabled: boolean }> = async (
  app,
  { authDisabled },
) => {
  app.get(
    '/api/session',
    {
      schema: {
        tags: ['auth'],
        summary: 'The role of the calling token (any valid token may ask)',
        response: { 200: Session },
      },
    },
    async (request) => ({
      auth_enabled: !authDisabled,
      role: request.principal?.role ?? null,
      name: request.principal?.name ?? null,
    }),
  )
}
