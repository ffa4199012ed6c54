import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors } from '../../platform/schemas.ts'
import { CreatedToken, TokenCreate, TokenInfo, TokenParams } from './schemas.ts'
import type { TokenService } from './service.ts'

const tags = ['admin', 'auth']

/** Admin routes of the API tokens; the secret appears once, in the answer to POST. */
export const tokenRoutes: FastifyPluginAsyncTypebox<{ tokens: TokenService }> = async (app, { tokens }) => {
  app.post(
    '/api/tokens',
    {
      schema: {
        tags,
        summary: 'Create an API token (admin); the token is shown only in this answer',
        body: TokenCreate,
        response: { 201: CreatedToken, ...errors(400) },
      },
    },
    async (request, reply) => {
      const { id, name, role, token, created_at } = await tokens.create(request.body.name, request.body.role)
      return reply.status(201).send({ id, name, role, token, created_at })
    },
  )

  app.get(
    '/api/tokens',
    {
      schema: {
        tags,
        summary: 'API tokens, without their secrets (admin)',
        response: { 200: Type.Array(TokenInfo) },
      },
    },
    () => tokens.list(),
  )

  app.delete(
    '/api/tokens/:id',
    {
      schema: {
        tags,
        summary: 'Revoke an API token (admin); other replicas stop accepting it within 30 s',
        params: TokenParams,
        response: { 200: TokenInfo, ...errors(400, 404) },
      },
    },
    (request) => tokens.revoke(request.params.id),
  )
}
