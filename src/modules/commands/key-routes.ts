import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../platform/schemas.ts'
import { DeviceParams } from '../devices/index.ts'
import { CommandKey } from './schemas.ts'
import type { CommandsService } from './service.ts'

const tags = ['admin', 'commands']

/** Admin routes of the per-device command keys (authentication arrives with a later issue). */
export const commandKeyRoutes: FastifyPluginAsyncTypebox<{ commands: CommandsService }> = async (
  app,
  { commands },
) => {
  app.get(
    '/api/devices/:device_id/command-key',
    {
      schema: {
        tags,
        summary: "The device's HMAC-SHA256 command key (admin)",
        params: DeviceParams,
        response: { 200: CommandKey, ...errors(400, 404) },
      },
    },
    (request) => commands.commandKey(request.params.device_id),
  )

  app.post(
    '/api/devices/:device_id/command-key/rotate',
    {
      schema: {
        tags,
        summary: "Replace the device's command key (admin); later commands are signed with the new one",
        params: DeviceParams,
        response: { 200: CommandKey, ...errors(400, 404) },
      },
    },
    (request) => commands.rotateCommandKey(request.params.device_id),
  )
}
