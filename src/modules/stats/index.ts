import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { AlertsService } from '../alerts/index.ts'
import type { DevicesService } from '../devices/index.ts'

const Stats = Type.Object({
  total_devices: Type.Integer(),
  device_by_status: Type.Array(Type.Object({ status: Type.String(), count: Type.Integer() })),
  unacknowledged_alerts: Type.Integer(),
  devices_online: Type.Integer(),
  devices_offline: Type.Integer(),
  devices_unknown: Type.Integer(),
  open_alerts_by_severity: Type.Record(Type.String(), Type.Integer()),
  commands_by_status: Type.Record(Type.String(), Type.Integer()),
  messages_ingested_last_hour: Type.Integer({
    description: 'messages this server process stored in the last hour',
  }),
})

export interface StatsOptions {
  devices: DevicesService
  alerts: AlertsService
  commands: { countByStatus(): Promise<Record<string, number>> }
  ingest: { messagesLastHour(): number }
}

/** GET /api/stats: fleet counts gathered from the other modules' facades. */
export const statsPlugin: FastifyPluginAsyncTypebox<StatsOptions> = async (
  app,
  { devices, alerts, commands, ingest },
) => {
  app.get(
    '/api/stats',
    { schema: { tags: ['stats'], summary: 'Fleet statistics', response: { 200: Stats } } },
    async () => {
      const [deviceCounts, alertCounts, commandCounts] = await Promise.all([
        devices.counts(),
        alerts.openCounts(),
        commands.countByStatus(),
      ])
      return {
        total_devices: deviceCounts.total,
        device_by_status: deviceCounts.byStatus,
        unacknowledged_alerts: alertCounts.total,
        devices_online: deviceCounts.connection.online,
        devices_offline: deviceCounts.connection.offline,
        devices_unknown: deviceCounts.connection.unknown,
        open_alerts_by_severity: alertCounts.bySeverity,
        commands_by_status: commandCounts,
        messages_ingested_last_hour: ingest.messagesLastHour(),
      }
    },
  )
}
