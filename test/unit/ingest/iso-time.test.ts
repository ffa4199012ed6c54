import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseIsoTime } from '../../../src/modules/ingest/iso-time.ts'

test('parseIsoTime: ISO 8601 times with a zone, as Date.parse reads them', () => {
  for (const s of [
    '2026-06-01T12:00:00Z',
    '2026-06-01T12:00:01.5Z',
    '2026-06-01T12:00:02.123+02:00',
    '2026-06-01t23:59:59.999-11:30',
    '2024-02-29T00:00:00z',
  ])
    assert.equal(parseIsoTime(s), Date.parse(s.toUpperCase()), s)
  assert.equal(parseIsoTime('2026-06-01T12:00:00.1234567Z'), Date.parse('2026-06-01T12:00:00.123Z'))
})

test('parseIsoTime: a date read before does not let a bad time or another date through', () => {
  // The first one caches its date; each of the others shares a prefix with it.
  assert.ok(Number.isFinite(parseIsoTime('2026-02-28T10:00:00Z')))
  for (const s of [
    '2026-02-29T10:00:00Z',
    '2025-02-29T10:00:00Z',
    '2026-02-28T24:00:00Z',
    '2026-02-28T10:60:00Z',
    '2026-02-28T10:00:00',
    '2026-02-28T10:00:00+0200',
    '2026-02-28T10:00:00+02:60',
    '2026-02-28 10:00:00Z',
    '2026-02-28T1x:00:00Z',
    '2026-02-28T10:00:00.Z',
  ])
    assert.ok(Number.isNaN(parseIsoTime(s)), s)
  assert.equal(parseIsoTime('2026-02-28T23:00:00-01:00'), Date.parse('2026-03-01T00:00:00Z'))
})

test('parseIsoTime: times of two and three dates interleaved read as Date.parse reads them', () => {
  // An envelope sent now and samples of another day alternate (two cached dates); a third evicts one.
  const times = [
    '2026-06-01T12:00:00Z',
    '2026-05-02T08:00:01.25Z',
    '2026-06-01T12:00:09Z',
    '2026-04-30T00:00:00Z',
  ]
  for (let round = 0; round < 3; round++)
    for (const s of [...times, ...times.reverse()]) assert.equal(parseIsoTime(s), Date.parse(s), s)
})
