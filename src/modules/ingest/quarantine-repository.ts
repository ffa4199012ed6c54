import { type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { PendingRecord } from './flush-plan.ts'

/** Quarantined messages as the API lists them. */
export interface QuarantinedRow {
  id: number
  quarantined_at: string
  received_at: string
  device_id: string | null
  topic: string
  payload_base64: string
  stage: string
  error: string
  replica: string
}

/** PostgreSQL text cannot hold NUL; an error message is cut to a readable length. */
const text = (s: string, max: number) => s.replaceAll('\u0000', '\uFFFD').slice(0, max)

/** Keeps journaled records the ingest cannot store (one statement, array parameters). */
export async function insertQuarantined(
  db: Kysely<Database>,
  records: { record: PendingRecord; deviceId: string | null }[],
  stage: string,
  error: string,
  replica: string,
): Promise<void> {
  if (records.length === 0) return
  await sql`
    insert into ingest_quarantine (received_at, device_id, topic, payload, stage, error, replica)
    select q.received_at, q.device_id, q.topic, decode(q.payload, 'hex'), ${stage}, ${text(error, 2000)}, ${replica}
    from unnest(
      ${records.map((r) => new Date(r.record.receivedAt).toISOString())}::timestamptz[],
      ${records.map((r) => r.deviceId)}::text[],
      ${records.map((r) => text(r.record.topic, 300))}::text[],
      ${records.map((r) => r.record.payload.toString('hex'))}::text[]
    ) as q(received_at, device_id, topic, payload)`.execute(db)
}

/** The newest quarantined messages, optionally of one device. */
export async function listQuarantined(
  db: Kysely<Database>,
  options: { deviceId?: string; limit: number },
): Promise<QuarantinedRow[]> {
  let q = db.selectFrom('ingest_quarantine').selectAll()
  if (options.deviceId !== undefined) q = q.where('device_id', '=', options.deviceId)
  const rows = await q.orderBy('id', 'desc').limit(options.limit).execute()
  return rows.map((r) => ({
    id: Number(r.id),
    quarantined_at: new Date(r.quarantined_at).toISOString(),
    received_at: new Date(r.received_at).toISOString(),
    device_id: r.device_id,
    topic: r.topic,
    payload_base64: Buffer.from(r.payload).toString('base64'),
    stage: r.stage,
    error: r.error,
    replica: r.replica,
  }))
}

/** How many messages are quarantined (all replicas). */
export async function countQuarantined(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('ingest_quarantine')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirst()
  return Number(row?.n ?? 0)
}
