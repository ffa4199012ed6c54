import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { InvalidInputError } from '../../platform/domain-errors.ts'
import { errors, MessageBody } from '../../platform/schemas.ts'
import {
  ConfigAuditEntry,
  Device,
  DeviceCreate,
  DeviceListQuery,
  DeviceParams,
  DeviceStatus,
  DeviceStatusUpdate,
  DeviceUpdate,
  LegacyDeviceParams,
} from './schemas.ts'
import type { DevicesService } from './service.ts'

const tags = ['devices']

/** The device routes of API.md. */
export const deviceRoutes: FastifyPluginAsyncTypebox<{ devices: DevicesService }> = async (
  app,
  { devices },
) => {
  app.get(
    '/api/devices',
    {
      schema: {
        tags,
        summary: 'List devices, newest first',
        querystring: DeviceListQuery,
        response: { 200: Type.Array(Device), ...errors(400) },
      },
    },
    (request) => devices.list(request.query),
  )

  app.get(
    '/api/devices/:device_id',
    {
      schema: {
        tags,
        summary: 'One device',
        params: DeviceParams,
        response: { 200: Device, ...errors(400, 404) },
      },
    },
    (request) => devices.get(request.params.device_id),
  )

  app.post(
    '/api/devices',
    {
      schema: {
        tags,
        summary: 'Register a device',
        body: DeviceCreate,
        response: { 201: Device, ...errors(400, 409) },
      },
    },
    async (request, reply) => reply.status(201).send(await devices.create(request.body)),
  )

  app.put(
    '/api/devices/:device_id',
    {
      schema: {
        tags,
        summary: 'Update some fields of a device',
        params: DeviceParams,
        body: DeviceUpdate,
        response: { 200: Device, ...errors(400, 404) },
      },
    },
    (request) => {
      if (Object.keys(request.body).length === 0) {
        throw new InvalidInputError(
          'No fields to update: give at least one of device_name, device_type, location, status, metadata',
        )
      }
      return devices.update(request.params.device_id, request.body)
    },
  )

  app.delete(
    '/api/devices/:device_id',
    {
      schema: {
        tags,
        summary: 'Delete a device with its alerts, commands, configuration history and dedup state',
        description:
          'Also accepts an id registered under the older grammar (e.g. `..`), so that it can be removed.',
        params: LegacyDeviceParams,
        response: { 200: MessageBody, ...errors(400, 404) },
      },
    },
    async (request) => {
      await devices.remove(request.params.device_id)
      return { message: 'Device deleted successfully' }
    },
  )

  app.post(
    '/api/devices/:device_id/heartbeat',
    {
      schema: {
        tags,
        summary: 'Mark the device as seen now',
        params: DeviceParams,
        response: { 200: MessageBody, ...errors(400, 404) },
      },
    },
    async (request) => {
      await devices.heartbeat(request.params.device_id)
      return { message: 'Heartbeat received' }
    },
  )

  app.get(
    '/api/devices/:device_id/config-history',
    {
      schema: {
        tags,
        summary: 'Configurations the device ran with, newest first (REQ-CONFIG-001 audit trail)',
        params: DeviceParams,
        response: { 200: Type.Array(ConfigAuditEntry), ...errors(400, 404) },
      },
    },
    (request) => devices.configHistory(request.params.device_id),
  )

  app.get(
    '/api/devices/:device_id/status',
    {
      schema: {
        tags,
        summary: 'Connection status of a device',
        params: DeviceParams,
        response: { 200: DeviceStatus, ...errors(400, 404) },
      },
    },
    async (request) => {
      const { device_id, connection_status, last_seen, fw_version } = await devices.get(
        request.params.device_id,
      )
      return { device_id, connection_status, last_seen, fw_version }
    },
  )

  app.put(
    '/api/devices/:device_id/status',
    {
      schema: {
        tags,
        summary: 'Set the connection status (and firmware) of a device',
        params: DeviceParams,
        body: DeviceStatusUpdate,
        response: { 200: Device, ...errors(400, 404) },
      },
    },
    (request) => devices.setStatus(request.params.device_id, request.body),
  )
}
