import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Kysely } from 'kysely'
import { Type } from 'typebox'
import type { Database } from '../../platform/db/index.ts'
import { errors, IsoTime, Nullable } from '../../platform/schemas.ts'
import { DEVICE_ID_PATTERN } from '../../protocol/index.ts'
import { countQuarantined, listQuarantined } from './quarantine-repository.ts'

const Quarantined = Type.Object({
  id: Type.Integer(),
  quarantined_at: IsoTime,
  received_at: IsoTime,
  device_id: Nullable(Type.String()),
  topic: Type.String(),
  payload_base64: Type.String({ description: 'the message as received' }),
  stage: Type.String({ description: 'where it failed: store' }),
  error: Type.String(),
  replica: Type.String({ description: 'MQTT_CLIENT_ID of the replica that quarantined it' }),
})

/** GET /api/ingest/quarantine: messages kept aside because their device failed to store alone. */
export const quarantineRoutes: FastifyPluginAsyncTypebox<{ db: Kysely<Database> }> = async (app, { db }) => {
  app.get(
    '/api/ingest/quarantine',
    {
      schema: {
        tags: ['ingest'],
        summary: 'Quarantined messages (poison isolation), newest first',
        querystring: Type.Object({
          device_id: Type.Optional(Type.String({ pattern: DEVICE_ID_PATTERN })),
          limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
        }),
        response: {
          200: Type.Object({ total: Type.Integer(), items: Type.Array(Quarantined) }),
          ...errors(400),
        },
      },
    },
    async (request) => ({
      total: await countQuarantined(db),
      items: await listQuarantined(db, { deviceId: request.query.device_id, limit: request.query.limit }),
    }),
  )
}
