import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors } from '../../platform/schemas.ts'
import { DeviceParams } from '../devices/index.ts'
import { Alert, AlertCreate, AlertListQuery, AlertParams, DeviceAlertsQuery } from './schemas.ts'
import type { AlertsService } from './service.ts'

const tags = ['alerts']

/** The alert routes of API.md plus the fleet-wide list. */
export const alertRoutes: FastifyPluginAsyncTypebox<{ alerts: AlertsService }> = async (app, { alerts }) => {
  app.get(
    '/api/devices/:device_id/alerts',
    {
      schema: {
        tags,
        summary: 'Alerts of a device, newest first',
        params: DeviceParams,
        querystring: DeviceAlertsQuery,
        response: { 200: Type.Array(Alert), ...errors(400, 404) },
      },
    },
    (request) => alerts.listForDevice(request.params.device_id, request.query.acknowledged),
  )

  app.post(
    '/api/devices/:device_id/alerts',
    {
      schema: {
        tags,
        summary: 'Raise an alert on a device',
        params: DeviceParams,
        body: AlertCreate,
        response: { 201: Alert, ...errors(400, 404) },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await alerts.create(request.params.device_id, request.body)),
  )

  app.post(
    '/api/alerts/:id/acknowledge',
    {
      schema: {
        tags,
        summary: 'Acknowledge an alert',
        params: AlertParams,
        response: { 200: Alert, ...errors(400, 404) },
      },
    },
    (request) => alerts.acknowledge(request.params.id),
  )

  app.get(
    '/api/alerts',
    {
      schema: {
        tags,
        summary: 'Alerts of the whole fleet, newest first',
        querystring: AlertListQuery,
        response: { 200: Type.Array(Alert), ...errors(400) },
      },
    },
    (request) => alerts.list(request.query),
  )
}
