import { type Kysely, type Selectable, sql, type Transaction } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { DeviceCommandsTable } from '../../platform/db/schema.ts'
import type { AckResult, CommandStatus } from './schemas.ts'

type Db = Kysely<Database> | Transaction<Database>
export type CommandRow = Selectable<DeviceCommandsTable> & { device_id: string }

/** Statuses an acknowledgement may still move a command out of (timeout: a late ack). */
export const ACKABLE: CommandStatus[] = ['pending', 'sent', 'timeout']

const selectCommands = (db: Db) =>
  db
    .selectFrom('device_commands as c')
    .innerJoin('devices as d', 'd.id', 'c.device_pk')
    .selectAll('c')
    .select('d.device_id')

export function insertCommand(
  db: Db,
  command: { cmd_id: string; device_pk: number; cmd: string; params: Record<string, unknown> },
) {
  return db
    .insertInto('device_commands')
    .values({ ...command, params: JSON.stringify(command.params), status: 'pending' })
    .execute()
}

export function findCommand(db: Db, cmdId: string): Promise<CommandRow | undefined> {
  return selectCommands(db).where('c.cmd_id', '=', cmdId).executeTakeFirst()
}

/** The row locked for the rest of the transaction (read-modify-write of `ota`). */
export function lockCommand(trx: Transaction<Database>, cmdId: string) {
  return trx
    .selectFrom('device_commands')
    .selectAll()
    .where('cmd_id', '=', cmdId)
    .forUpdate()
    .executeTakeFirst()
}

export function listCommands(
  db: Db,
  devicePk: number,
  query: { status?: CommandStatus; limit: number; offset: number },
): Promise<CommandRow[]> {
  let q = selectCommands(db).where('c.device_pk', '=', devicePk)
  if (query.status) q = q.where('c.status', '=', query.status)
  return q
    .orderBy('c.created_at', 'desc')
    .orderBy('c.cmd_id', 'desc')
    .limit(query.limit)
    .offset(query.offset)
    .execute()
}

/** The device's newest start_ota command. */
export function latestOtaCommand(db: Db, deviceId: string): Promise<CommandRow | undefined> {
  return selectCommands(db)
    .where('d.device_id', '=', deviceId)
    .where('c.cmd', '=', 'start_ota')
    .orderBy('c.created_at', 'desc')
    .orderBy('c.cmd_id', 'desc')
    .limit(1)
    .executeTakeFirst()
}

/** The outbox: commands no broker has taken yet, oldest first. */
export function listPending(db: Db, limit: number, excluding: string[]): Promise<CommandRow[]> {
  let q = selectCommands(db).where('c.status', '=', 'pending')
  if (excluding.length > 0) q = q.where('c.cmd_id', 'not in', excluding)
  return q.orderBy('c.created_at', 'asc').orderBy('c.cmd_id', 'asc').limit(limit).execute()
}

/** pending → sent; does nothing when an ack already moved the command on. */
export async function markSent(db: Db, cmdId: string): Promise<boolean> {
  const result = await db
    .updateTable('device_commands')
    .set({ status: 'sent', sent_at: sql`now()`, updated_at: sql`now()` })
    .where('cmd_id', '=', cmdId)
    .where('status', '=', 'pending')
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}

/**
 * Records an acknowledgement when the command is still waiting for one (pending, sent, or timed
 * out). Returns the updated row, or undefined when another acknowledgement got there first.
 */
export function recordAck(db: Db, cmdId: string, result: AckResult, detail: string | null) {
  return db
    .updateTable('device_commands')
    .set({
      status: result,
      detail,
      acked_at: sql`now()`,
      sent_at: sql`coalesce(sent_at, now())`,
      updated_at: sql`now()`,
    })
    .where('cmd_id', '=', cmdId)
    .where('status', 'in', ACKABLE)
    .returning('cmd_id')
    .executeTakeFirst()
}

/** sent → timeout for every command sent more than `timeoutS` ago (database clock). */
export function markTimedOut(db: Db, timeoutS: number) {
  return db
    .updateTable('device_commands')
    .set({
      status: 'timeout',
      detail: `no acknowledgement within ${timeoutS} s of being sent`,
      updated_at: sql`now()`,
    })
    .where('status', '=', 'sent')
    .where('sent_at', '<', sql<Date>`now() - ${timeoutS}::integer * interval '1 second'`)
    .returning(['cmd_id', 'device_pk', 'cmd'])
    .execute()
}

export function setOta(trx: Db, cmdId: string, ota: Record<string, unknown>, status?: CommandStatus) {
  return trx
    .updateTable('device_commands')
    .set({
      ota: JSON.stringify(ota),
      updated_at: sql`now()`,
      ...(status === 'accepted'
        ? {
            status,
            acked_at: sql`coalesce(acked_at, now())`,
            sent_at: sql`coalesce(sent_at, now())`,
            detail: 'accepted: implied by the first ota_status report',
          }
        : {}),
    })
    .where('cmd_id', '=', cmdId)
    .execute()
}

export async function countByStatus(db: Db): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('device_commands')
    .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy('status')
    .execute()
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.count)]))
}
