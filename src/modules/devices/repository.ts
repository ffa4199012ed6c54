import type { Kysely, Selectable, Transaction } from 'kysely'
import { sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { DevicesTable } from '../../platform/db/schema.ts'
import type { DeviceCreate, DeviceListQuery, DeviceUpdate } from './schemas.ts'

export type DeviceRow = Selectable<DevicesTable>
type Db = Kysely<Database> | Transaction<Database>

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

export function listDevices(db: Db, query: DeviceListQuery): Promise<DeviceRow[]> {
  let q = db.selectFrom('devices').selectAll()
  if (query.status) q = q.where('status', '=', query.status)
  if (query.type) q = q.where('device_type', '=', query.type)
  if (query.connection_status) q = q.where('connection_status', '=', query.connection_status)
  if (query.q) {
    const pattern = `%${escapeLike(query.q)}%`
    q = q.where((eb) =>
      eb.or([
        eb('device_id', 'ilike', pattern),
        eb('device_name', 'ilike', pattern),
        eb('location', 'ilike', pattern),
      ]),
    )
  }
  return q
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(query.limit)
    .offset(query.offset)
    .execute()
}

export function findDevice(db: Db, deviceId: string): Promise<DeviceRow | undefined> {
  return db.selectFrom('devices').selectAll().where('device_id', '=', deviceId).executeTakeFirst()
}

/** Inserts the device; undefined when the device_id is taken. */
export function insertDevice(
  trx: Transaction<Database>,
  input: DeviceCreate,
  config: Record<string, unknown>,
): Promise<DeviceRow | undefined> {
  return trx
    .insertInto('devices')
    .values({
      device_id: input.device_id,
      device_name: input.device_name,
      device_type: input.device_type ?? null,
      location: input.location ?? null,
      status: input.status ?? 'active',
      metadata: JSON.stringify(input.metadata ?? {}),
      config: JSON.stringify(config),
    })
    .onConflict((oc) => oc.column('device_id').doNothing())
    .returningAll()
    .executeTakeFirst()
}

export function insertConfigAudit(
  trx: Db,
  devicePk: number,
  config: Record<string, unknown>,
  source: string,
  cmdId: string | null = null,
) {
  return trx
    .insertInto('device_configs')
    .values({ device_pk: devicePk, config: JSON.stringify(config), source, cmd_id: cmdId })
    .execute()
}

export function updateDevice(db: Db, deviceId: string, patch: DeviceUpdate): Promise<DeviceRow | undefined> {
  const { metadata, ...fields } = patch
  return db
    .updateTable('devices')
    .set({
      ...fields,
      ...(metadata !== undefined ? { metadata: JSON.stringify(metadata) } : {}),
      updated_at: sql`now()`,
    })
    .where('device_id', '=', deviceId)
    .returningAll()
    .executeTakeFirst()
}

export async function deleteDevice(db: Db, deviceId: string): Promise<boolean> {
  const result = await db.deleteFrom('devices').where('device_id', '=', deviceId).executeTakeFirst()
  return Number(result.numDeletedRows) > 0
}

export function setConnection(
  db: Db,
  deviceId: string,
  fields: { connection_status?: 'online' | 'offline' | 'unknown'; fw_version?: string; last_seen?: Date },
): Promise<DeviceRow | undefined> {
  return db
    .updateTable('devices')
    .set({ ...fields, updated_at: sql`now()` })
    .where('device_id', '=', deviceId)
    .returningAll()
    .executeTakeFirst()
}

export function countByStatus(db: Db) {
  return db
    .selectFrom('devices')
    .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy('status')
    .orderBy('status')
    .execute()
}

export function countByConnection(db: Db) {
  return db
    .selectFrom('devices')
    .select(['connection_status', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy('connection_status')
    .execute()
}

export function setConfig(db: Db, devicePk: number, config: Record<string, unknown>) {
  return db
    .updateTable('devices')
    .set({ config: JSON.stringify(config), updated_at: sql`now()` })
    .where('id', '=', devicePk)
    .execute()
}

export function listConfigAudit(db: Db, devicePk: number, limit: number) {
  return db
    .selectFrom('device_configs')
    .selectAll()
    .where('device_pk', '=', devicePk)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute()
}
