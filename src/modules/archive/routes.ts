import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { NotFoundError } from '../../platform/domain-errors.ts'
import { errors, IsoTime } from '../../platform/schemas.ts'
import { ARCHIVE_CATEGORIES } from '../../protocol/index.ts'
import { DeviceId, type DevicesService } from '../devices/index.ts'
import type { RawArchive } from './raw-archive.ts'

const tags = ['archive']
const RawDataQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  prefix: Type.String({
    default: '',
    pattern: '^[A-Za-z0-9_./-]{0,200}$',
    description: 'narrows the listing inside the device, e.g. telemetry/2026/11',
  }),
})
const RawObject = Type.Object({ filename: Type.String(), size: Type.Integer(), last_modified: IsoTime })
const ObjectParams = Type.Object({
  device_id: DeviceId,
  '*': Type.String({
    pattern: `^(${ARCHIVE_CATEGORIES.join('|')})/\\d{4}/\\d\\d/\\d\\d/[A-Za-z0-9_.-]{1,100}\\.ndjson$`,
    description: 'the filename of a listing without its leading "{device_id}/"',
  }),
})

/** Listing and download of a device's archived raw messages. */
export const archiveRoutes: FastifyPluginAsyncTypebox<{
  archive: RawArchive
  devices: DevicesService
}> = async (app, { archive, devices }) => {
  app.get(
    '/api/devices/:device_id/raw-data',
    {
      schema: {
        tags,
        summary: 'Archived raw messages of a device, newest first',
        params: Type.Object({ device_id: DeviceId }),
        querystring: RawDataQuery,
        response: { 200: Type.Array(RawObject), ...errors(400, 404) },
      },
    },
    async (request) => {
      const device = await devices.get(request.params.device_id)
      const objects = await archive.list(device.device_id, request.query.prefix, request.query.limit)
      return objects.map((o) => ({
        filename: o.key,
        size: o.size,
        last_modified: o.lastModified.toISOString(),
      }))
    },
  )

  app.get(
    '/api/devices/:device_id/raw-data/*',
    {
      schema: {
        tags,
        summary: 'Download one archived object (NDJSON, one message per line)',
        description:
          'Each line is `{"received_at", "topic", "message"}` with the payload as sent, or with `"message_base64"` (its bytes in base64) for a binary telemetry datagram (PROTOCOL.md).',
        params: ObjectParams,
        response: {
          200: Type.Unsafe<unknown>({
            type: 'string',
            format: 'binary',
            description: 'application/x-ndjson',
          }),
          ...errors(400, 404),
        },
      },
    },
    async (request, reply) => {
      const key = `${request.params.device_id}/${request.params['*']}`
      const object = await archive.get(request.params.device_id, request.params['*'])
      if (!object) throw new NotFoundError('Archived object not found')
      return reply
        .header('content-type', 'application/x-ndjson')
        .header('content-length', object.size)
        .header('content-disposition', `attachment; filename="${key.split('/').pop()}"`)
        .send(object.body)
    },
  )
}
