import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, IsoTime, Nullable } from '../../platform/schemas.ts'
import { DeviceParams, type DevicesService } from '../devices/index.ts'
import {
  BUCKET_MS,
  type EnergyInterval,
  type EnergyTotals,
  sumIntervals,
  totals,
} from './energy-integrator.ts'
import type { EnergyService } from './energy-service.ts'
import { parseWindow } from './routes.ts'
import { TIME_POINT_HELP } from './time-range.ts'

const EnergyQuery = Type.Object({
  start: Type.String({ default: '-24h', maxLength: 40, description: TIME_POINT_HELP }),
  stop: Type.String({ default: 'now()', maxLength: 40, description: TIME_POINT_HELP }),
  interval: Type.Union(
    Object.keys(BUCKET_MS).map((k) => Type.Literal(k)),
    { default: '1h', description: 'load-profile period: 5m, 15m, 1h or 1d' },
  ),
})

const Registers = {
  import_kwh: Type.Number({ description: 'traction energy (P > 0)' }),
  export_kwh: Type.Number({ description: 'regenerated energy returned to the line (P < 0)' }),
  net_kwh: Type.Number({ description: 'import − export' }),
  apparent_kvah: Nullable(Type.Number()),
  reactive_kvarh: Nullable(Type.Number()),
  coverage: Type.Number({ description: 'share of the period with data, 0..1' }),
}
const ProfileRow = Type.Object({ start: IsoTime, ...Registers })
const EnergyAnswer = Type.Object({
  device_id: Type.String(),
  start: IsoTime,
  stop: IsoTime,
  interval: Type.String(),
  rows: Type.Array(ProfileRow),
  totals: Type.Object(Registers),
})

const kilo = (v: number | null) => (v === null ? null : v / 1000)

function registers(r: EnergyTotals, periodMs: number) {
  return {
    import_kwh: r.import_wh / 1000,
    export_kwh: r.export_wh / 1000,
    net_kwh: (r.import_wh - r.export_wh) / 1000,
    apparent_kvah: kilo(r.apparent_vah),
    reactive_kvarh: kilo(r.reactive_varh),
    coverage: periodMs > 0 ? Math.min(1, r.covered_ms / periodMs) : 0,
  }
}

/** GET /api/devices/{device_id}/energy: load profile (traction vs regenerated) with coverage. */
export const energyRoutes: FastifyPluginAsyncTypebox<{
  energy: EnergyService
  devices: DevicesService
}> = async (app, { energy, devices }) => {
  app.get(
    '/api/devices/:device_id/energy',
    {
      schema: {
        tags: ['telemetry'],
        summary: 'Energy load profile and totals of a device',
        params: DeviceParams,
        querystring: EnergyQuery,
        response: { 200: EnergyAnswer, ...errors(400, 404) },
      },
    },
    async (request) => {
      const { start, stop } = parseWindow(request.query)
      const interval = request.query.interval as keyof typeof BUCKET_MS
      const bucket = BUCKET_MS[interval]
      const device = await devices.get(request.params.device_id)
      const alignedStart = Math.floor(start / bucket) * bucket
      const stored: EnergyInterval[] = await energy.intervals(device.id, alignedStart, stop)
      const rows = sumIntervals(stored, bucket)
      return {
        device_id: device.device_id,
        start: new Date(alignedStart).toISOString(),
        stop: new Date(stop).toISOString(),
        interval,
        rows: rows.map((r) => ({ start: new Date(r.start).toISOString(), ...registers(r, bucket) })),
        totals: registers(totals(stored), stop - alignedStart),
      }
    },
  )
}
