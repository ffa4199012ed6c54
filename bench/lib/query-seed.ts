/**
 * Seeding for bench/query.ts: devices by SQL (as bench/telemetry-write.ts does), telemetry through
 * PostgresTelemetryStore.write — the rows the ingest stores and the rollup_dirty marks it makes —
 * in batches of 1,000 datagrams, as the ingest flushes them.
 */
import { type Kysely, sql } from 'kysely'
import { type Datagram, PostgresTelemetryStore } from '../../src/modules/telemetry/index.ts'
import type { Database } from '../../src/platform/db/index.ts'

const BATCH = 1000

/** Registers `n` devices named `${prefix}-0000`…; returns their ids and pks in order. */
export async function seedDevices(
  db: Kysely<Database>,
  prefix: string,
  n: number,
): Promise<{ id: string; pk: number }[]> {
  await sql`insert into devices (device_id, device_name)
    select ${prefix} || '-' || lpad(g::text, 4, '0'), ${prefix} from generate_series(0, ${n - 1}) g`.execute(
    db,
  )
  const { rows } = await sql<{ device_id: string; id: number }>`
    select device_id, id from devices where device_name = ${prefix} order by device_id`.execute(db)
  return rows.map((r) => ({ id: r.device_id, pk: Number(r.id) }))
}

/** A series shape: a datagram every `everyMs` holding `samples` samples `stepMs` apart. */
export interface Cadence {
  everyMs: number
  samples: number
  stepMs: number
}

function datagramOf(devicePk: number, seq: number, t0: number, c: Cadence): Datagram {
  const times = Array.from({ length: c.samples }, (_, i) => t0 + i * c.stepMs)
  // Like a DC meter: voltage around 750 V, a current that changes sign (braking).
  const voltage = times.map((_, i) => 750 + ((seq + i) % 10))
  const current = times.map((_, i) => ((seq * 7 + i) % 13) * 50 - 200)
  return {
    devicePk,
    deviceId: String(devicePk),
    seq,
    t0,
    times,
    values: { voltage_dc: voltage, current_dc: current },
    other: null,
    outOfRange: [],
  }
}

/**
 * Stores [start, stop) of every device at the cadence, device after device interleaved in time
 * (as a fleet sends). Returns the number of datagram rows written.
 */
export async function seedTelemetry(
  db: Kysely<Database>,
  pks: number[],
  start: number,
  stop: number,
  cadence: Cadence,
): Promise<number> {
  const store = new PostgresTelemetryStore(db)
  let batch: Datagram[] = []
  let rows = 0
  let seq = 0
  for (let t0 = start; t0 < stop; t0 += cadence.everyMs, seq++) {
    for (const pk of pks) {
      batch.push(datagramOf(pk, seq, t0, cadence))
      if (batch.length === BATCH) {
        await store.write(batch)
        rows += batch.length
        batch = []
      }
    }
  }
  await store.write(batch)
  return rows + batch.length
}
