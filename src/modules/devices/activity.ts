import { type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { DEFAULT_DEVICE_CONFIG } from './device-config.ts'

/** What the ingest learned about a device in one batch. */
export interface DeviceActivity {
  devicePk: number
  lastSeen: Date
  fwVersion?: string
  connection?: 'online' | 'offline'
}

/**
 * Applies a batch of activity in one UPDATE (no statement per message). Returns the devices whose
 * connection status changed, with the new status.
 */
export async function applyActivity(db: Kysely<Database>, updates: DeviceActivity[]) {
  if (updates.length === 0) return []
  // Array parameters, whatever the number of devices (PostgreSQL's 65,535 bind-parameter limit).
  const pks = updates.map((u) => u.devicePk)
  const { rows } = await sql<{ id: number; device_id: string; before: string; after: string }>`
    update devices d set
      last_seen = greatest(d.last_seen, v.last_seen),
      fw_version = coalesce(v.fw, d.fw_version),
      connection_status = coalesce(v.conn, d.connection_status),
      updated_at = now()
    from unnest(
        ${pks}::int[],
        ${updates.map((u) => u.lastSeen.toISOString())}::timestamptz[],
        ${updates.map((u) => u.fwVersion ?? null)}::text[],
        ${updates.map((u) => u.connection ?? null)}::text[]
      ) as v(pk, last_seen, fw, conn),
      (select id, connection_status as before from devices where id = any(${pks}::int[])) o
    where d.id = v.pk and o.id = d.id
    returning d.id, d.device_id, o.before, d.connection_status as after`.execute(db)
  return rows
    .filter((r) => r.before !== r.after)
    .map((r) => ({ devicePk: Number(r.id), deviceId: r.device_id, status: r.after }))
}

/**
 * REQ-ONLINE-001: marks offline every online device silent for longer than
 * 2 × max(send_interval_s, hello_interval_s) of its own configuration; returns them.
 */
export async function markSilentOffline(db: Kysely<Database>, now: Date) {
  const send = sql`coalesce((config->>'send_interval_s')::int, ${DEFAULT_DEVICE_CONFIG.send_interval_s})`
  const hello = sql`coalesce((config->>'hello_interval_s')::int, ${DEFAULT_DEVICE_CONFIG.hello_interval_s})`
  const { rows } = await sql<{ id: number; device_id: string; last_seen: Date; timeout_s: number }>`
    update devices set connection_status = 'offline', updated_at = now()
    where connection_status = 'online'
      and last_seen < ${now.toISOString()}::timestamptz - make_interval(secs => 2 * greatest(${send}, ${hello}))
    returning id, device_id, last_seen, 2 * greatest(${send}, ${hello}) as timeout_s`.execute(db)
  return rows.map((r) => ({
    devicePk: Number(r.id),
    deviceId: r.device_id,
    lastSeen: r.last_seen,
    timeoutS: Number(r.timeout_s),
  }))
}
