import { type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { ConflictError, NotFoundError } from '../../platform/domain-errors.ts'
import { toIso } from '../../platform/schemas.ts'
import { DEVICE_ID_PATTERN } from '../../protocol/index.ts'
import { applyActivity, type DeviceActivity, markSilentOffline } from './activity.ts'
import { type DeviceConfig, initialConfig } from './device-config.ts'
import * as repo from './repository.ts'
import type { Device, DeviceCreate, DeviceListQuery, DeviceStatusUpdate, DeviceUpdate } from './schemas.ts'

export const DEVICE_NOT_FOUND = 'Device not found'

/** The API shape of a device row: ISO timestamps, snake_case as the old API had it. */
export function toDevice(row: repo.DeviceRow): Device {
  return {
    id: Number(row.id),
    device_id: row.device_id,
    device_name: row.device_name,
    device_type: row.device_type,
    location: row.location,
    status: row.status,
    connection_status: row.connection_status,
    last_seen: toIso(row.last_seen),
    fw_version: row.fw_version,
    metadata: row.metadata ?? {},
    config: row.config ?? {},
    created_at: toIso(row.created_at) as string,
    updated_at: toIso(row.updated_at) as string,
  }
}

/** The device registry: the devices module's public facade. */
export class DevicesService {
  private readonly registeredListeners: ((device: Device) => Promise<void>)[] = []
  private readonly deletedListeners: ((deviceId: string) => void)[] = []

  constructor(private readonly db: Kysely<Database>) {}

  /** Runs `listener` after each registration (e.g. the commands module issues the device's key). */
  onRegistered(listener: (device: Device) => Promise<void>): void {
    this.registeredListeners.push(listener)
  }

  async list(query: DeviceListQuery): Promise<Device[]> {
    return (await repo.listDevices(this.db, query)).map(toDevice)
  }

  /**
   * Registered ids that break the device-id grammar (registered before it was enforced, e.g. `..`):
   * none can connect or be ingested any more; they are reported at start so they get deleted.
   */
  async invalidIds(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('devices')
      .select('device_id')
      .where(sql<boolean>`device_id !~ ${DEVICE_ID_PATTERN}`)
      .orderBy('device_id')
      .limit(1000)
      .execute()
    return rows.map((r) => r.device_id)
  }

  /** The device, or undefined when it is not registered. */
  async find(deviceId: string): Promise<Device | undefined> {
    const row = await repo.findDevice(this.db, deviceId)
    return row && toDevice(row)
  }

  async get(deviceId: string): Promise<Device> {
    const device = await this.find(deviceId)
    if (!device) throw new NotFoundError(DEVICE_NOT_FOUND)
    return device
  }

  /** Registers a device with its initial configuration (and an audit row of it). 409 when taken. */
  async create(input: DeviceCreate): Promise<Device> {
    const config = initialConfig(input.metadata)
    const row = await this.db.transaction().execute(async (trx) => {
      const inserted = await repo.insertDevice(trx, input, { ...config })
      if (inserted) await repo.insertConfigAudit(trx, inserted.id, { ...config }, 'registration')
      return inserted
    })
    if (!row) throw new ConflictError('Device with this ID already exists')
    const device = toDevice(row)
    for (const listener of this.registeredListeners) await listener(device)
    return device
  }

  /**
   * Records a configuration the device now runs with (REQ-CONFIG-001): merges it into the device
   * record and appends an audit row, in one transaction. Returns the merged configuration.
   */
  async applyConfig(
    deviceId: string,
    change: Partial<DeviceConfig>,
    source: string,
    cmdId: string | null = null,
  ): Promise<Record<string, unknown>> {
    return this.db.transaction().execute(async (trx) => {
      const row = await repo.findDevice(trx, deviceId)
      if (!row) throw new NotFoundError(DEVICE_NOT_FOUND)
      const merged = { ...(row.config ?? {}), ...change }
      await repo.setConfig(trx, row.id, merged)
      await repo.insertConfigAudit(trx, row.id, merged, source, cmdId)
      return merged
    })
  }

  /** The configuration history of a device, newest first. */
  async configHistory(deviceId: string, limit = 100) {
    const device = await this.get(deviceId)
    const rows = await repo.listConfigAudit(this.db, device.id, limit)
    return rows.map((r) => ({
      id: Number(r.id),
      config: r.config,
      source: r.source,
      cmd_id: r.cmd_id,
      created_at: toIso(r.created_at) as string,
    }))
  }

  async update(deviceId: string, patch: DeviceUpdate): Promise<Device> {
    const row = await repo.updateDevice(this.db, deviceId, patch)
    if (!row) throw new NotFoundError(DEVICE_NOT_FOUND)
    return toDevice(row)
  }

  /** Deletes the device; its alerts, commands, configuration history and dedup state cascade. */
  async remove(deviceId: string): Promise<void> {
    if (!(await repo.deleteDevice(this.db, deviceId))) throw new NotFoundError(DEVICE_NOT_FOUND)
    for (const listener of this.deletedListeners) listener(deviceId)
  }

  /** Runs `listener` after a device is deleted (caches of other modules forget it). */
  onDeleted(listener: (deviceId: string) => void): void {
    this.deletedListeners.push(listener)
  }

  /**
   * The internal id of each registered device among `deviceIds` (one query). Only the ids: the
   * ingest asks this for every batch, and reading each device's configuration too (a jsonb parsed
   * per row) cost about a tenth of its CPU.
   */
  async pksOf(deviceIds: string[]): Promise<Map<string, number>> {
    const found = new Map<string, number>()
    if (deviceIds.length === 0) return found
    const rows = await this.db
      .selectFrom('devices')
      .select(['id', 'device_id'])
      .where(sql<boolean>`device_id = any(${deviceIds}::text[])`)
      .execute()
    for (const r of rows) found.set(r.device_id, Number(r.id))
    return found
  }

  /**
   * A page of devices ordered by device_id, after the cursor `after` (a device_id): all of them,
   * or those of one type, or those among `deviceIds`. For fleet-wide reads that page by id.
   */
  async pageById(page: {
    after?: string
    limit: number
    type?: string
    deviceIds?: readonly string[]
  }): Promise<{ pk: number; device_id: string }[]> {
    let q = this.db.selectFrom('devices').select(['id', 'device_id'])
    if (page.after !== undefined) q = q.where('device_id', '>', page.after)
    if (page.type !== undefined) q = q.where('device_type', '=', page.type)
    if (page.deviceIds) q = q.where(sql<boolean>`device_id = any(${[...page.deviceIds]}::text[])`)
    const rows = await q.orderBy('device_id').limit(page.limit).execute()
    return rows.map((r) => ({ pk: Number(r.id), device_id: r.device_id }))
  }

  /** The configuration of each device among `devicePks` that still exists, by internal id (one query). */
  async configsByPk(devicePks: number[]): Promise<Map<number, Record<string, unknown>>> {
    const found = new Map<number, Record<string, unknown>>()
    if (devicePks.length === 0) return found
    const rows = await this.db
      .selectFrom('devices')
      .select(['id', 'config'])
      .where(sql<boolean>`id = any(${devicePks}::int[])`)
      .execute()
    for (const r of rows) found.set(Number(r.id), r.config ?? {})
    return found
  }

  /** The device_id of an internal id (undefined when the device is gone). */
  async deviceIdByPk(devicePk: number): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('devices')
      .select('device_id')
      .where('id', '=', devicePk)
      .executeTakeFirst()
    return row?.device_id
  }

  /** Registers unknown devices seen on MQTT (UNKNOWN_DEVICE_POLICY=auto_register). */
  async autoRegister(deviceIds: string[]): Promise<void> {
    for (const device_id of deviceIds) {
      try {
        await this.create({ device_id, device_name: device_id, metadata: { auto_registered: true } })
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error
      }
    }
  }

  /** Records what the ingest saw in one batch; returns the devices whose connection status changed. */
  recordActivity(updates: DeviceActivity[]) {
    return applyActivity(this.db, updates)
  }

  /** Marks silent devices offline (REQ-ONLINE-001) and returns them. */
  markSilentOffline(now = new Date()) {
    return markSilentOffline(this.db, now)
  }

  /** A manual heartbeat: the device is seen now, hence online. */
  async heartbeat(deviceId: string, at = new Date()): Promise<Device> {
    const row = await repo.setConnection(this.db, deviceId, { last_seen: at, connection_status: 'online' })
    if (!row) throw new NotFoundError(DEVICE_NOT_FOUND)
    return toDevice(row)
  }

  async setStatus(deviceId: string, update: DeviceStatusUpdate): Promise<Device> {
    const row = await repo.setConnection(this.db, deviceId, update)
    if (!row) throw new NotFoundError(DEVICE_NOT_FOUND)
    return toDevice(row)
  }

  async counts() {
    const [byStatus, byConnection] = await Promise.all([
      repo.countByStatus(this.db),
      repo.countByConnection(this.db),
    ])
    const connection = { online: 0, offline: 0, unknown: 0 }
    for (const r of byConnection) connection[r.connection_status] = Number(r.count)
    return {
      total: byStatus.reduce((sum, r) => sum + Number(r.count), 0),
      byStatus: byStatus.map((r) => ({ status: r.status, count: Number(r.count) })),
      connection,
    }
  }
}
