import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { NotFoundError } from '../../platform/domain-errors.ts'
import type { DevicesService } from '../devices/index.ts'
import { type AlertEventKind, toAlert } from './alert-events.ts'
import { enqueueEvents } from './outbox-repository.ts'
import * as repo from './repository.ts'
import type { Alert, AlertCreate, AlertListQuery, Severity } from './schemas.ts'

/** What the system raises by itself; `device_pk` is the registry's internal id of the device. */
export interface SystemAlert {
  device_pk: number
  alert_type: string
  severity: Severity
  message: string
  details?: Record<string, unknown>
}

/** Where events of changed alerts are queued: the outbox targets, and the "updated" rate limit. */
export interface AlertEventOptions {
  targets: string[]
  updateEveryS: number
}

/** Alerts: the alerts module's public facade. */
export class AlertsService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly devices: DevicesService,
    private readonly events: AlertEventOptions = { targets: [], updateEveryS: 0 },
  ) {}

  /**
   * Runs a change of alerts and queues its events in the same transaction: an alert changes if
   * and only if its event is queued (nothing lost on a crash, nothing queued twice). Without
   * delivery targets, the change runs alone.
   */
  private async change<T>(
    fn: (db: Kysely<Database>) => Promise<{ result: T; events: [number[], AlertEventKind][] }>,
  ): Promise<T> {
    if (this.events.targets.length === 0) return (await fn(this.db)).result
    return this.db.transaction().execute(async (trx) => {
      const { result, events } = await fn(trx)
      for (const [ids, kind] of events)
        await enqueueEvents(trx, ids, kind, this.events.targets, this.events.updateEveryS)
      return result
    })
  }

  private upsert(alert: repo.NewAlert): Promise<number> {
    return this.change(async (db) => {
      const { id, inserted } = await repo.upsertOpenAlert(db, alert)
      return { result: Number(id), events: [[[Number(id)], inserted ? 'opened' : 'updated']] }
    })
  }

  async listForDevice(deviceId: string, acknowledged?: boolean): Promise<Alert[]> {
    const device = await this.devices.get(deviceId)
    return (await repo.listAlerts(this.db, { device_pk: device.id, acknowledged })).map(toAlert)
  }

  async list(query: AlertListQuery): Promise<Alert[]> {
    return (await repo.listAlerts(this.db, query)).map(toAlert)
  }

  async get(id: number): Promise<Alert> {
    const row = await repo.findAlert(this.db, id)
    if (!row) throw new NotFoundError('Alert not found')
    return toAlert(row)
  }

  /** A user's alert on a device (API.md); repeats of an open one of the same type are counted on it. */
  async create(deviceId: string, input: AlertCreate): Promise<Alert> {
    const device = await this.devices.get(deviceId)
    const id = await this.upsert({
      device_pk: device.id,
      alert_type: input.alert_type,
      severity: input.severity ?? 'info',
      message: input.message,
    })
    return this.get(id)
  }

  /** Raises (or counts again) an alert of the system's own. */
  async raise(alert: SystemAlert): Promise<number> {
    return this.upsert(alert)
  }

  /**
   * Closes the open alert of that type once its condition is gone (e.g. the device is back);
   * `note` (what resolved it) is kept in its details as `resolution`.
   */
  async resolve(devicePk: number, alertType: string, note?: string): Promise<void> {
    await this.change(async (db) => {
      const rows = await repo.resolveOpenAlert(db, devicePk, alertType, note)
      return { result: undefined, events: [[rows.map((r) => Number(r.id)), 'resolved']] }
    })
  }

  async acknowledge(id: number): Promise<Alert> {
    // Acknowledging twice is no error (and no second event).
    await this.change(async (db) => {
      const row = await repo.acknowledgeAlert(db, id)
      return { result: undefined, events: row ? [[[id], 'acknowledged']] : [] }
    })
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
