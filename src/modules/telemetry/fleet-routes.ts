import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { InvalidInputError } from '../../platform/domain-errors.ts'
import { errors, IsoTime, Nullable } from '../../platform/schemas.ts'
import { LEGACY_DEVICE_ID_PATTERN } from '../../protocol/index.ts'
import type { DevicesService } from '../devices/index.ts'
import { DERIVED_TYPES, STORED_TYPES } from './measurement-types.ts'
import { parseWindow } from './routes.ts'
import type { AggregateFn, TelemetryStore } from './store.ts'
import { parseDuration, TIME_POINT_HELP } from './time-range.ts'

/** Windows a device may have in one answer; points in one answer (devices × windows) at most. */
const MAX_WINDOWS = 10_000
const MAX_POINTS = 200_000
const MAX_LISTED = 1000
const LISTED_ID = new RegExp(LEGACY_DEVICE_ID_PATTERN)

const FleetQuery = Type.Object({
  metric: Type.String({
    pattern: '^[a-z][a-z0-9_]{0,31}$',
    description: `a measurement type (${STORED_TYPES.join(', ')}) or a computed one (${DERIVED_TYPES.join(', ')})`,
  }),
  every: Type.String({
    pattern: '^\\d{1,6}(s|m|h|d|w)$',
    description:
      'window length, e.g. 15m. Whole minutes, 15 minutes or hours of a measured type are answered from the rollups',
  }),
  start: Type.String({
    default: '-24h',
    maxLength: 40,
    description: `${TIME_POINT_HELP}; rounded down to a window`,
  }),
  stop: Type.String({
    default: 'now()',
    maxLength: 40,
    description: `${TIME_POINT_HELP}; rounded up to a window`,
  }),
  fn: Type.Union(
    ['mean', 'min', 'max', 'last', 'sum', 'count'].map((f) => Type.Literal(f)),
    { default: 'mean', description: 'aggregate of each window' },
  ),
  devices: Type.Optional(
    Type.String({
      maxLength: 66_000,
      description: `comma-separated device ids (at most ${MAX_LISTED}); omitted = all`,
    }),
  ),
  type: Type.Optional(
    Type.String({ minLength: 1, maxLength: 64, description: 'only devices of this device_type' }),
  ),
  after: Type.Optional(Type.String({ maxLength: 64, description: 'the `next` of the previous page' })),
  limit: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 1000,
    description: `devices per page (fewer when devices × windows would pass ${MAX_POINTS.toLocaleString('en')})`,
  }),
})

const FleetAnswer = Type.Object({
  metric: Type.String(),
  fn: Type.String(),
  every: Type.String(),
  start: IsoTime,
  stop: IsoTime,
  times: Type.Array(IsoTime, { description: 'the start of each window, in order' }),
  pending_hours: Type.Integer({
    description:
      'device-hours in the range whose newest samples the answer does not hold yet (rollups still being refreshed; 0 = exact)',
  }),
  devices: Type.Array(
    Type.Object({
      device_id: Type.String(),
      values: Type.Array(Nullable(Type.Number()), {
        description: 'one value per window of `times`; null where the device has no sample in it',
      }),
    }),
  ),
  next: Nullable(Type.String({ description: 'pass as `after` for the next page; null on the last' })),
})

function listedIds(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined
  const ids = [...new Set(text.split(',').filter((id) => id !== ''))]
  if (ids.length === 0 || ids.length > MAX_LISTED)
    throw new InvalidInputError(`devices: give 1 to ${MAX_LISTED} comma-separated device ids`)
  const bad = ids.find((id) => !LISTED_ID.test(id))
  if (bad !== undefined) throw new InvalidInputError(`devices: "${bad.slice(0, 70)}" is not a device id`)
  return ids
}

/**
 * GET /api/fleet/metrics: the same windows of every device (or a list, or a type), a page of
 * devices at a time, as a table: the window starts once, then each device's values in that order. start and stop are rounded out to whole windows, so every window is whole and,
 * for measured types at whole minutes, 15 minutes or hours, the answer comes from the rollups in
 * one statement (one query per device otherwise).
 */
export const fleetMetricsRoutes: FastifyPluginAsyncTypebox<{
  store: TelemetryStore
  devices: DevicesService
}> = async (app, { store, devices }) => {
  app.get(
    '/api/fleet/metrics',
    {
      schema: {
        tags: ['telemetry'],
        summary: 'The same windows of many devices',
        querystring: FleetQuery,
        response: { 200: FleetAnswer, ...errors(400) },
      },
    },
    async (request) => {
      const query = request.query
      const everyMs = parseDuration(query.every)
      if (everyMs === undefined) throw new InvalidInputError('every: must be a positive duration like 15m')
      const window = parseWindow(query)
      const start = Math.floor(window.start / everyMs) * everyMs
      const stop = Math.ceil(window.stop / everyMs) * everyMs
      const windows = (stop - start) / everyMs
      if (windows > MAX_WINDOWS)
        throw new InvalidInputError(`every: ${windows} windows in [start, stop); at most ${MAX_WINDOWS}`)
      const limit = Math.max(1, Math.min(query.limit, Math.floor(MAX_POINTS / windows)))
      const page = await devices.pageById({
        after: query.after,
        limit: limit + 1,
        type: query.type,
        deviceIds: listedIds(query.devices),
      })
      const shown = page.slice(0, limit)
      const answer = await store.queryFleet({
        devicePks: shown.map((d) => d.pk),
        metric: query.metric,
        start,
        stop,
        everyMs,
        fn: query.fn as AggregateFn,
      })
      return {
        metric: query.metric,
        fn: query.fn,
        every: query.every,
        start: new Date(start).toISOString(),
        stop: new Date(stop).toISOString(),
        pending_hours: answer.pendingHours,
        times: Array.from({ length: windows }, (_, i) => new Date(start + i * everyMs).toISOString()),
        devices: shown.map((d) => ({ device_id: d.device_id, values: answer.values.get(d.pk) ?? [] })),
        next: page.length > limit ? (shown.at(-1)?.device_id ?? null) : null,
      }
    },
  )
}
