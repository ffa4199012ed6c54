import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

const tags = ['health']
const Checks = Type.Record(Type.String(), Type.String())

/** /health (the old contract), /healthz (liveness) and /readyz (every dependency answers). */
export const healthPlugin: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/health',
    {
      schema: {
        tags,
        summary: 'Health of the service (the earlier API)',
        response: { 200: Type.Object({ status: Type.Literal('healthy'), service: Type.String() }) },
      },
    },
    async () => ({ status: 'healthy' as const, service: 'iot-meter' }),
  )

  app.get(
    '/healthz',
    {
      schema: {
        tags,
        summary: 'Liveness: the process runs',
        response: {
          200: Type.Object({
            status: Type.Literal('alive'),
            service: Type.String(),
            uptime_s: Type.Number(),
          }),
        },
      },
    },
    async () => ({ status: 'alive' as const, service: 'iot-meter', uptime_s: Math.round(process.uptime()) }),
  )

  app.get(
    '/readyz',
    {
      schema: {
        tags,
        summary: 'Readiness: the database, the broker connections and the stores answer',
        response: {
          200: Type.Object({ status: Type.Literal('ready'), service: Type.String(), checks: Checks }),
          503: Type.Object({ status: Type.Literal('not ready'), service: Type.String(), checks: Checks }),
        },
      },
    },
    async (_request, reply) => {
      const { ok, checks } = await app.readiness.cached()
      if (ok) return { status: 'ready' as const, service: 'iot-meter', checks }
      return reply.status(503).send({ status: 'not ready' as const, service: 'iot-meter', checks })
    },
  )
}
