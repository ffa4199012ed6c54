import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { InvalidInputError } from '../../platform/domain-errors.ts'
import { errors, IsoTime } from '../../platform/schemas.ts'
import { DeviceParams, type DevicesService } from '../devices/index.ts'
import { DERIVED_TYPES, STORED_TYPES } from './measurement-types.ts'
import type { AggregateFn, TelemetryStore } from './store.ts'
import { EARLIEST, LATEST, parseDuration, parseTimePoint, TIME_POINT_HELP } from './time-range.ts'

const MetricsQuery = Type.Object({
  start: Type.String({ default: '-1h', maxLength: 40, description: TIME_POINT_HELP }),
  stop: Type.String({ default: 'now()', maxLength: 40, description: TIME_POINT_HELP }),
  metric: Type.Optional(
    Type.String({
      pattern: '^[a-z][a-z0-9_]{0,31}$',
      description: `a measurement type (${STORED_TYPES.join(', ')}) or a computed one (${DERIVED_TYPES.join(', ')}); omitted = every measured type`,
    }),
  ),
  every: Type.Optional(
    Type.String({ pattern: '^\\d{1,6}(s|m|h|d|w)$', description: 'window length, e.g. 1m, 15m, 1h' }),
  ),
  fn: Type.Union(
    ['mean', 'min', 'max', 'last', 'sum', 'count'].map((f) => Type.Literal(f)),
    { default: 'mean', description: 'aggregate of each window' },
  ),
  limit: Type.Integer({ minimum: 1, maximum: 100000, default: 10000 }),
})

const Point = Type.Object({
  time: IsoTime,
  device_id: Type.String(),
  metric: Type.String(),
  value: Type.Number(),
})

/** One instant of a query (`name` is the parameter), a 400 naming it when unreadable or out of range. */
export function parseInstant(name: string, text: string, now: number): number {
  const t = parseTimePoint(text, now)
  if (t === undefined) throw new InvalidInputError(`${name}: must be ${TIME_POINT_HELP} (got "${text}")`)
  if (t < EARLIEST || t > LATEST)
    throw new InvalidInputError(`${name}: must lie between 0001-01-01 and 9999-12-31 (got "${text}")`)
  return t
}

/** Parses the time window of a query, 400 naming the parameter on anything else. */
export function parseWindow(query: { start: string; stop: string }, now = Date.now()) {
  const start = parseInstant('start', query.start, now)
  const stop = parseInstant('stop', query.stop, now)
  if (stop <= start) throw new InvalidInputError('start must be before stop')
  return { start, stop }
}

/** GET /api/devices/{device_id}/metrics: raw points or windowed aggregates, ascending by time. */
export const metricsRoutes: FastifyPluginAsyncTypebox<{
  store: TelemetryStore
  devices: DevicesService
}> = async (app, { store, devices }) => {
  app.get(
    '/api/devices/:device_id/metrics',
    {
      schema: {
        tags: ['telemetry'],
        summary: 'Time series of a device',
        params: DeviceParams,
        querystring: MetricsQuery,
        response: { 200: Type.Array(Point), ...errors(400, 404) },
      },
    },
    async (request) => {
      const { start, stop } = parseWindow(request.query)
      const everyMs = request.query.every ? parseDuration(request.query.every) : undefined
      if (request.query.every && everyMs === undefined)
        throw new InvalidInputError('every: must be a positive duration like 1m')
      const device = await devices.get(request.params.device_id)
      const metrics = request.query.metric ? [request.query.metric] : [...STORED_TYPES]
      const fn = request.query.fn as AggregateFn
      const out: { time: string; device_id: string; metric: string; value: number }[] = []
      for (const metric of metrics) {
        const points = await store.query({
          devicePk: device.id,
          metric,
          start,
          stop,
          everyMs,
          fn,
          limit: request.query.limit,
        })
        for (const p of points) {
          out.push({
            time: new Date(p.time).toISOString(),
            device_id: device.device_id,
            metric,
            value: p.value,
          })
        }
      }
      if (metrics.length > 1) out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0))
      return out.slice(0, request.query.limit)
    },
  )
}
