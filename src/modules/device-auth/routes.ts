import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors, MessageBody } from '../../platform/schemas.ts'
import { DeviceParams } from '../devices/index.ts'
import { MqttSecret } from './schemas.ts'
import type { DeviceSecrets } from './service.ts'

const tags = ['admin', 'devices']

/** Admin routes of the devices' MQTT secrets (policy: admin). */
export const deviceSecretRoutes: FastifyPluginAsyncTypebox<{ secrets: DeviceSecrets }> = async (
  app,
  { secrets },
) => {
  app.post(
    '/api/devices/:device_id/mqtt-secret/rotate',
    {
      schema: {
        tags,
        summary: "Issue the device's MQTT password (admin); shown only in this answer",
        description:
          'Embedded broker, MQTT_DEVICE_AUTH=token: username = client id = device_id, password as returned. ' +
          'The previous password stops working at once and a connected session of the device is closed. ' +
          'A newly registered device has a secret nobody knows: rotate once to provision it.',
        params: DeviceParams,
        response: { 200: MqttSecret, ...errors(400, 404) },
      },
    },
    (request) => secrets.rotate(request.params.device_id),
  )

  app.delete(
    '/api/devices/:device_id/mqtt-secret',
    {
      schema: {
        tags,
        summary: "Revoke the device's MQTT password (admin) without issuing a new one",
        params: DeviceParams,
        response: { 200: MessageBody, ...errors(400, 404) },
      },
    },
    async (request) => {
      await secrets.revoke(request.params.device_id)
      return { message: 'MQTT secret revoked' }
    },
  )
}
