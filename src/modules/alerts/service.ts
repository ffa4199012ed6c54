import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { notFound } from '../../platform/errors.ts'
import { toIso } from '../../platform/schemas.ts'
import type { DevicesService } from '../devices/index.ts'
import * as repo from './repository.ts'
import type { Alert, AlertCreate, AlertListQuery, Severity } from './schemas.ts'

function toAlert(row: repo.AlertRow): Alert {
  return {
    id: Number(row.id),
    device_id: row.device_id,
    alert_type: row.alert_type,
    severity: row.severity,
    message: row.message,
    details: row.details ?? null,
    acknowledged: row.acknowledged,
    acknowledged_at: toIso(row.acknowledged_at),
    occurrences: Number(row.occurrences),
    last_seen_at: toIso(row.last_seen_at) as string,
    resolved_at: toIso(row.resolved_at),
    created_at: toIso(row.created_at) as string,
  }
}

/** What the system raises by itself; `device_pk` is the registry's internal id of the device. */
export interface SystemAlert {
  device_pk: number
  alert_type: string
  severity: Severity
  message: string
  details?: Record<string, unknown>
}

/** Alerts: the alerts module's public facade. */
export class AlertsService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly devices: DevicesService,
  ) {}

  async listForDevice(deviceId: string, acknowledged?: boolean): Promise<Alert[]> {
    const device = await this.devices.get(deviceId)
    return (await repo.listAlerts(this.db, { device_pk: device.id, acknowledged })).map(toAlert)
  }

  async list(query: AlertListQuery): Promise<Alert[]> {
    return (await repo.listAlerts(this.db, query)).map(toAlert)
  }

  async get(id: number): Promise<Alert> {
    const row = await repo.findAlert(this.db, id)
    if (!row) throw notFound('Alert not found')
    return toAlert(row)
  }

  /** A user's alert on a device (API.md); repeats of an open one of the same type are counted on it. */
  async create(deviceId: string, input: AlertCreate): Promise<Alert> {
    const device = await this.devices.get(deviceId)
    const { id } = await repo.upsertOpenAlert(this.db, {
      device_pk: device.id,
      alert_type: input.alert_type,
      severity: input.severity ?? 'info',
      message: input.message,
    })
    return this.get(Number(id))
  }

  /** Raises (or counts again) an alert of the system's own. */
  async raise(alert: SystemAlert): Promise<number> {
    const { id } = await repo.upsertOpenAlert(this.db, alert)
    return Number(id)
  }

  /**
   * Closes the open alert of that type once its condition is gone (e.g. the device is back);
   * `note` (what resolved it) is kept in its details as `resolution`.
   */
  async resolve(devicePk: number, alertType: string, note?: string): Promise<void> {
    await repo.resolveOpenAlert(this.db, devicePk, alertType, note)
  }

  async acknowledge(id: number): Promise<Alert> {
    if (!(await repo.acknowledgeAlert(this.db, id))) throw notFound('Alert not found')
    return this.get(id)
  }

  /** Unacknowledged alerts, by severity. */
  async openCounts(): Promise<{ total: number; bySeverity: Record<string, number> }> {
    const rows = await repo.countOpenBySeverity(this.db)
    const bySeverity: Record<string, number> = {}
    for (const r of rows) bySeverity[r.severity] = Number(r.count)
    return { total: rows.reduce((s, r) => s + Number(r.count), 0), bySeverity }
  }
}
