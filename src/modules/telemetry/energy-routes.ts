import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, IsoTime, Nullable } from '../../platform/schemas.ts'
import { DeviceParams, type DevicesService } from '../devices/index.ts'
import { checkZone, ENERGY_PERIODS, type EnergyPeriod, MAX_ROWS } from './calendar.ts'
import type { EnergyTotals } from './energy-integrator.ts'
import type { EnergyService } from './energy-service.ts'
import { energyWindow } from './energy-window.ts'
import { parseInstant, parseWindow } from './routes.ts'
import { EARLIEST, TIME_POINT_HELP } from './time-range.ts'

const EnergyQuery = Type.Object({
  start: Type.String({ default: '-24h', maxLength: 40, description: TIME_POINT_HELP }),
  stop: Type.String({ default: 'now()', maxLength: 40, description: TIME_POINT_HELP }),
  interval: Type.Union(
    ENERGY_PERIODS.map((k) => Type.Literal(k)),
    {
      default: '1h',
      description: `load-profile period: 5m, 15m, 1h (epoch-aligned), 1d or 1mo (calendar, in tz); at most ${MAX_ROWS} rows`,
    },
  ),
  tz: Type.String({
    default: 'UTC',
    maxLength: 64,
    pattern: '^[A-Za-z0-9_+\\-/]+$',
    description: 'IANA time zone of 1d and 1mo periods (days of 23 or 25 h where the clock changes)',
  }),
  format: Type.Optional(
    Type.Union([Type.Literal('json'), Type.Literal('csv')], {
      description: 'csv: one line per interval, for billing tools (also with Accept: text/csv)',
    }),
  ),
})

const kvarh = (description: string) => Nullable(Type.Number({ description }))
export const Registers = {
  import_kwh: Type.Number({ description: 'traction energy (P > 0)' }),
  export_kwh: Type.Number({ description: 'regenerated energy returned to the line (P < 0)' }),
  net_kwh: Type.Number({ description: 'import − export' }),
  apparent_kvah: Nullable(Type.Number()),
  apparent_import_kvah: kvarh('apparent energy while P ≥ 0'),
  apparent_export_kvah: kvarh('apparent energy while P < 0'),
  reactive_kvarh: kvarh('|Q| integrated, with or without sign information'),
  reactive_import_inductive_kvarh: kvarh('quadrant I: P ≥ 0, Q > 0 (IEC 62053-23)'),
  reactive_import_capacitive_kvarh: kvarh('quadrant IV: P ≥ 0, Q < 0'),
  reactive_export_inductive_kvarh: kvarh('quadrant II: P < 0, Q > 0'),
  reactive_export_capacitive_kvarh: kvarh('quadrant III: P < 0, Q < 0'),
  reactive_unsigned_kvarh: kvarh(
    'reactive energy of samples without power_reactive or phase_angle: sign unknown',
  ),
  reactive_sign: Nullable(
    Type.Union([Type.Literal('measured'), Type.Literal('missing'), Type.Literal('partial')], {
      description:
        'whether the meter stated the sign of Q (power_reactive or phase_angle): measured, missing (only magnitudes: the quadrant registers stay 0), partial; null without reactive energy',
    }),
  ),
  coverage: Type.Number({ description: 'seconds with data ÷ seconds of the period, 0..1' }),
  final: Type.Boolean({
    description:
      'false while the values may still change (inside the grace period, or next to an open seq gap)',
  }),
}
const ProfileRow = Type.Object({ start: IsoTime, end: IsoTime, ...Registers })
const EnergyAnswer = Type.Object({
  device_id: Type.String(),
  start: IsoTime,
  stop: IsoTime,
  interval: Type.String(),
  tz: Type.String(),
  rows: Type.Array(ProfileRow),
  totals: Type.Object(Registers),
})

/** Wh (varh, VAh) → kWh rounded to whole Wh: the only rounding, at the edge, of unrounded registers. */
const kwh = (wh: number) => Math.round(wh) / 1000
const kilo = (v: number | null) => (v === null ? null : kwh(v))

function signOf(r: EnergyTotals): 'measured' | 'missing' | 'partial' | null {
  if (r.reactive_varh === null || r.reactive_varh === 0) return null
  const unsigned = r.reactive_unsigned_varh ?? 0
  if (unsigned === 0) return 'measured'
  return unsigned >= r.reactive_varh ? 'missing' : 'partial'
}

export function registers(r: EnergyTotals & { final: boolean }, periodMs: number) {
  return {
    import_kwh: kwh(r.import_wh),
    export_kwh: kwh(r.export_wh),
    net_kwh: kwh(r.import_wh - r.export_wh),
    apparent_kvah: kilo(r.apparent_vah),
    apparent_import_kvah: kilo(r.apparent_import_vah),
    apparent_export_kvah: kilo(r.apparent_export_vah),
    reactive_kvarh: kilo(r.reactive_varh),
    reactive_import_inductive_kvarh: kilo(r.reactive_import_inductive_varh),
    reactive_import_capacitive_kvarh: kilo(r.reactive_import_capacitive_varh),
    reactive_export_inductive_kvarh: kilo(r.reactive_export_inductive_varh),
    reactive_export_capacitive_kvarh: kilo(r.reactive_export_capacitive_varh),
    reactive_unsigned_kvarh: kilo(r.reactive_unsigned_varh),
    reactive_sign: signOf(r),
    coverage: periodMs > 0 ? Math.min(1, r.covered_ms / periodMs) : 0,
    final: r.final,
  }
}

const CSV_COLUMNS = ['start', 'end', ...Object.keys(Registers)]

/** The answer as CSV: a header line, then one line per row (empty cell for null). */
function toCsv(rows: Record<string, unknown>[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? '' : String(v))
  return `${[CSV_COLUMNS.join(','), ...rows.map((r) => CSV_COLUMNS.map((c) => cell(r[c])).join(','))].join('\r\n')}\r\n`
}

const RegistersQuery = Type.Object({
  at: Type.String({ default: 'now()', maxLength: 40, description: TIME_POINT_HELP }),
})
const { coverage: _coverage, ...Cumulative } = Registers
const RegistersAnswer = Type.Object({
  device_id: Type.String(),
  at: IsoTime,
  registers: Type.Object({
    ...Cumulative,
    covered_s: Type.Number({ description: 'seconds of data the registers were integrated from' }),
  }),
})

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
        summary: 'Energy load profile and totals of a device, exactly over [start, stop)',
        description:
          'Rows are the periods of the window, clipped to it (empty ones listed with zeros). JSON, or CSV with format=csv or Accept: text/csv.',
        params: DeviceParams,
        querystring: EnergyQuery,
        response: {
          200: {
            content: {
              'application/json': { schema: EnergyAnswer },
              'text/csv': { schema: Type.String({ description: 'header line, then one line per row' }) },
            },
          },
          ...errors(400, 404),
        },
      },
    },
    async (request, reply) => {
      const now = Date.now()
      const { start, stop } = parseWindow(request.query, now)
      const period = request.query.interval as EnergyPeriod
      const tz = request.query.tz
      checkZone(tz)
      const device = await devices.get(request.params.device_id)
      const window = await energyWindow(energy, device.id, { start, stop, period, tz, now })
      const rows = window.rows.map((r) => ({
        start: new Date(r.start).toISOString(),
        end: new Date(r.end).toISOString(),
        ...registers(r, r.end - r.start),
      }))
      const csv =
        request.query.format === 'csv' ||
        (request.query.format === undefined && /\btext\/csv\b/.test(request.headers.accept ?? ''))
      if (csv) {
        reply.type('text/csv; charset=utf-8')
        return toCsv(rows)
      }
      return {
        device_id: device.device_id,
        start: new Date(start).toISOString(),
        stop: new Date(stop).toISOString(),
        interval: period,
        tz,
        rows,
        totals: registers(window.totals, stop - start),
      }
    },
  )

  app.get(
    '/api/devices/:device_id/registers',
    {
      schema: {
        tags: ['telemetry'],
        summary: 'Cumulative energy registers of a device at an instant (the meter display)',
        description:
          'Import, export, apparent and four-quadrant reactive registers integrated from the first sample up to `at`.',
        params: DeviceParams,
        querystring: RegistersQuery,
        response: { 200: RegistersAnswer, ...errors(400, 404) },
      },
    },
    async (request) => {
      const now = Date.now()
      const at = parseInstant('at', request.query.at, now)
      const device = await devices.get(request.params.device_id)
      const sum = await energy.registersAt(device.id, at)
      const open = await energy.openGaps(device.id, EARLIEST, at)
      const final = at + energy.graceMs <= now && open.length === 0
      const { coverage: _, ...values } = registers({ ...sum, final }, 0)
      return {
        device_id: device.device_id,
        at: new Date(at).toISOString(),
        registers: { ...values, covered_s: sum.covered_ms / 1000 },
      }
    },
  )
}
