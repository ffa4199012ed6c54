import {
  type ArchiveBody,
  ArchiveBuffer,
  FsArchiveStore,
  RawArchive,
} from '../../src/modules/archive/index.ts'
import { connectDatabase, migrateToLatest } from '../../src/platform/db/index.ts'
import { tempDir } from '../../test/helpers/env.ts'

/** The file store, counting its writes (each would be one PUT on S3). */
class CountingStore extends FsArchiveStore {
  puts = 0
  override async put(key: string, body: ArchiveBody): Promise<void> {
    this.puts++
    await super.put(key, body)
  }
}

const DAY_S = 86_400
const line = (i: number) =>
  Buffer.from(`{"seq":${i},"ts":"2026-12-04T08:00:00Z","samples":[${'230.1,'.repeat(40)}0]}`)

export interface PutCount {
  puts: number
  putsPerDay: number
  indexRowsPerDay: number
}

/**
 * `meters` meters each sending once per `cadenceS`, a checkpoint every second, simulated for
 * `seconds` on a clock of its own (the buffer's period runs on the lines' receive times), through
 * the ingest's ArchiveBuffer into the file store: the writes and index rows counted and scaled to a day.
 */
export async function countArchivePuts(o: {
  meters: number
  cadenceS: number
  periodS: number
  seconds: number
}): Promise<PutCount> {
  const dir = tempDir()
  const { db } = await connectDatabase({ dataDir: dir.path, poolMax: 2, inMemory: true })
  try {
    await migrateToLatest(db)
    const store = new CountingStore(`${dir.path}/archive`)
    const buffer = new ArchiveBuffer(new RawArchive(store, db, o.periodS * 1000), 'bench')
    const t0 = Date.UTC(2026, 11, 4, 8)
    for (let s = 0; s < o.seconds; s++) {
      const now = t0 + s * 1000
      // 1/cadence of the fleet each second: each meter once per cadence.
      for (let m = s % o.cadenceS; m < o.meters; m += o.cadenceS)
        buffer.add(`m${m}`, 'telemetry', [line(s)], now)
      if (buffer.due(now + 999)) await buffer.take().write()
    }
    await buffer.take().write()
    const { count } = await db
      .selectFrom('archive_sections')
      .select((e) => e.fn.countAll<number>().as('count'))
      .executeTakeFirstOrThrow()
    const perDay = (n: number) => Math.round((n * DAY_S) / o.seconds)
    return { puts: store.puts, putsPerDay: perDay(store.puts), indexRowsPerDay: perDay(Number(count)) }
  } finally {
    await db.destroy()
    dir.remove()
  }
}
