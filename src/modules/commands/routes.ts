import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { NotFoundError } from '../../platform/domain-errors.ts'
import { errors } from '../../platform/schemas.ts'
import { DeviceParams } from '../devices/index.ts'
import { AckBody, CmdIdParams, Command, CommandCreate, CommandIssued, CommandListQuery } from './schemas.ts'
import type { CommandsService } from './service.ts'

const tags = ['commands']

/** The command routes of API.md, plus one command and a device's latest firmware upgrade. */
export const commandRoutes: FastifyPluginAsyncTypebox<{ commands: CommandsService }> = async (
  app,
  { commands },
) => {
  app.post(
    '/api/devices/:device_id/commands',
    {
      schema: {
        tags,
        summary: 'Send a command to a device (signed, QoS 2, to every broker)',
        description:
          '201 when a broker took it (status sent); 202 when no broker is reachable: the command stays ' +
          'pending in the outbox and is sent when a broker connection is back.',
        params: DeviceParams,
        body: CommandCreate,
        response: { 201: CommandIssued, 202: CommandIssued, ...errors(400, 404) },
      },
    },
    async (request, reply) => {
      const { sent, body } = await commands.issue(request.params.device_id, request.body)
      return reply.status(sent ? 201 : 202).send(body)
    },
  )

  app.get(
    '/api/devices/:device_id/commands',
    {
      schema: {
        tags,
        summary: 'Commands of a device, newest first',
        params: DeviceParams,
        querystring: CommandListQuery,
        response: { 200: Type.Array(Command), ...errors(400, 404) },
      },
    },
    (request) => commands.listForDevice(request.params.device_id, request.query),
  )

  app.get(
    '/api/commands/:cmd_id',
    {
      schema: {
        tags,
        summary: 'One command with its status',
        params: CmdIdParams,
        response: { 200: Command, ...errors(400, 404) },
      },
    },
    (request) => commands.get(request.params.cmd_id),
  )

  app.put(
    '/api/commands/:cmd_id/ack',
    {
      schema: {
        tags,
        summary: 'Record the acknowledgement of a command by hand (devices normally ack over MQTT)',
        description:
          'Repeating the recorded result is harmless (200); another result than the recorded one is 409. ' +
          'A late ack, after timeout, still records the result and says so in detail.',
        params: CmdIdParams,
        body: AckBody,
        response: { 200: Command, ...errors(400, 404, 409) },
      },
    },
    (request) => commands.acknowledge(request.params.cmd_id, request.body),
  )

  app.get(
    '/api/devices/:device_id/ota',
    {
      schema: {
        tags,
        summary: "The device's latest firmware upgrade (start_ota command with its progress)",
        params: DeviceParams,
        response: { 200: Command, ...errors(400, 404) },
      },
    },
    async (request) => {
      const command = await commands.latestOta(request.params.device_id)
      if (!command) throw new NotFoundError('No OTA for this device')
      return command
    },
  )
}
