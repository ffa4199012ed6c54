import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ArchiveBuffer } from '../../../src/modules/archive/archive-buffer.ts'
import { FsArchiveStore } from '../../../src/modules/archive/index.ts'
import { tempDir } from '../../helpers/env.ts'

// Issue 16 row 2: one line under a key no store takes (a legacy device id `..`) failed every
// checkpoint, so the journal never settled and the whole fleet stalled.
test('a checkpoint with a line under an invalid key writes the others and does not fail', async () => {
  const dir = tempDir()
  try {
    const dropped: string[] = []
    const buffer = new ArchiveBuffer(new FsArchiveStore(dir.path), 'run', (id) => dropped.push(id))
    buffer.add('..', 'telemetry', [Buffer.from('{}')], Date.now())
    buffer.add('fine', 'telemetry', [Buffer.from('{}')], Date.now())
    await buffer.take().write()
    assert.deepEqual(dropped, ['..'])
    assert.equal(buffer.buffered, 0)
    assert.equal((await new FsArchiveStore(dir.path).list('fine/', 10)).length, 1)
  } finally {
    dir.remove()
  }
})
