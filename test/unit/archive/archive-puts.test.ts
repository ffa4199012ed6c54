import assert from 'node:assert/strict'
import { test } from 'node:test'
import { countArchivePuts } from '../../../bench/lib/archive-puts.ts'

// Issue 18: 1,000 meters at the 10 s cadence wrote ~8.6 M objects a day (one per device per checkpoint).
test('1,000 meters at the 10 s cadence: grouped objects stay below 50,000 PUTs a day', async (t) => {
  const r = await countArchivePuts({ meters: 1000, cadenceS: 10, periodS: 60, seconds: 180 })
  t.diagnostic(`${r.puts} PUTs in 180 s → ${r.putsPerDay} a day, ${r.indexRowsPerDay} index rows a day`)
  assert.equal(r.puts, 3, 'one object per 60 s for the whole fleet')
  assert.ok(r.putsPerDay <= 50_000)
})
