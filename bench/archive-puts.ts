/**
 * Archive objects (S3 PUTs) a day for a fleet, by ARCHIVE_OBJECT_PERIOD_S: counted over a simulated
 * period and scaled to a day. `npm run bench:archive-puts -- [meters] [cadence_s]` (1,000 and 10).
 */
import { countArchivePuts } from './lib/archive-puts.ts'

const meters = Number(process.argv[2] ?? 1000)
const cadenceS = Number(process.argv[3] ?? 10)
for (const [periodS, seconds] of [
  [60, 600],
  [10, 120],
  [0, 30],
] as const) {
  const r = await countArchivePuts({ meters, cadenceS, periodS, seconds })
  console.log(
    `${meters} meters every ${cadenceS} s, ARCHIVE_OBJECT_PERIOD_S=${periodS}: ${r.puts} PUTs in ${seconds} s → ${r.putsPerDay.toLocaleString('en')} PUTs a day, ${r.indexRowsPerDay.toLocaleString('en')} index rows a day`,
  )
}
