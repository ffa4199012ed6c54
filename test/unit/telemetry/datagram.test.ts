import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Measurement, toDatagram } from '../../../src/modules/telemetry/index.ts'

/** 10 samples × 3 types, in the order devices send them (sample by sample). */
function ordered(): Measurement[] {
  const out: Measurement[] = []
  for (let i = 0; i < 10; i++) {
    const t = 1_700_000_000_000 + i * 1000
    out.push({ t, type: 'voltage_dc', val: 750 + i }, { t, type: 'current_dc', val: 300 - i })
    if (i % 3 === 0) out.push({ t, type: 'vibration', val: i / 10 })
  }
  return out
}

/** A deterministic shuffle (seeded LCG), so a failure is reproducible. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items]
  let s = seed
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31
    const j = s % (i + 1)
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

test('toDatagram: the same datagram whatever the order of the measurements', () => {
  const expected = toDatagram(1, 'd', 7, ordered())
  assert.equal(expected.times.length, 10)
  assert.equal(expected.t0, 1_700_000_000_000)
  assert.deepEqual(expected.values.voltage_dc, [750, 751, 752, 753, 754, 755, 756, 757, 758, 759])
  assert.deepEqual(expected.other?.vibration, [0, null, null, 0.3, null, null, 0.6, null, null, 0.9])
  // Type by type instead of sample by sample: times go back, so the general path runs.
  const byType = [...ordered()].sort((a, b) => a.type.localeCompare(b.type))
  assert.deepEqual(toDatagram(1, 'd', 7, byType), expected)
  for (let seed = 1; seed <= 20; seed++) {
    assert.deepEqual(toDatagram(1, 'd', 7, shuffled(ordered(), seed)), expected, `seed ${seed}`)
  }
  // Newest first.
  assert.deepEqual(toDatagram(1, 'd', 7, [...ordered()].reverse()), expected)
})

test('toDatagram: repeated times within a sample and a single sample', () => {
  const one = toDatagram(1, 'd', 1, [
    { t: 5, type: 'voltage_dc', val: 1 },
    { t: 5, type: 'current_dc', val: 2 },
  ])
  assert.deepEqual(one.times, [5])
  assert.deepEqual(one.values, { voltage_dc: [1], current_dc: [2] })
  assert.equal(one.other, null)
})
