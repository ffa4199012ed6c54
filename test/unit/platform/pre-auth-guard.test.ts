import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import {
  type GuardRefusal,
  type GuardRefused,
  PreAuthGuard,
} from '../../../src/platform/mqtt/pre-auth-guard.ts'

/**
 * The guard over a real TCP connection, read the way aedes reads it (`socket.read()` on
 * 'readable'). What a refusal reports: after login, the client id and the length the packet
 * announced, so an operator can find a device that loops on an oversized publish.
 */
describe('pre-authentication guard', () => {
  const server = createServer()
  before(async () => {
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
  })
  after(() => server.close())

  /** A connection pair: the server's side under the guard, read continuously, and the client. */
  async function pair(
    guard: PreAuthGuard,
  ): Promise<{ served: Socket; client: Socket; closed: Promise<void> }> {
    const accepted = once(server, 'connection')
    const { port } = server.address() as { port: number }
    const client = connect(port, '127.0.0.1')
    const [served] = (await accepted) as [Socket]
    assert.ok(guard.watch(served))
    served.on('readable', () => {
      while (served.read() !== null) {}
    })
    const closed = new Promise<void>((resolve) => served.once('close', () => resolve()))
    return { served, client, closed }
  }

  const limits = { preAuthBytes: 1024, maxPacketBytes: 4096, perAddress: 0 }
  // CONNECT with a 2-byte body (the guard reads fixed headers only), then a PUBLISH announcing 16,384.
  const connectPacket = Buffer.from([0x10, 0x02, 0x00, 0x00])
  const bigPublishHeader = Buffer.from([0x30, 0x80, 0x80, 0x01])

  test('a logged-in client over the packet limit is closed and named, with the length it announced', async () => {
    const refusals: [GuardRefusal, GuardRefused][] = []
    const guard = new PreAuthGuard(limits, (reason, refused) => refusals.push([reason, refused]))
    const { served, client, closed } = await pair(guard)
    client.write(connectPacket)
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(refusals.length, 0)
    guard.accept(served, 'meter-7')
    client.write(bigPublishHeader)
    await closed
    client.destroy()
    assert.equal(refusals.length, 1)
    const [reason, refused] = refusals[0] as [GuardRefusal, GuardRefused]
    assert.equal(reason, 'packet_too_large')
    assert.equal(refused.clientId, 'meter-7')
    assert.equal(refused.announcedBytes, 16_384)
    assert.equal(refused.address, '127.0.0.1')
  })

  test('before login a refusal has no client id (nothing was proven)', async () => {
    const refusals: [GuardRefusal, GuardRefused][] = []
    const guard = new PreAuthGuard(limits, (reason, refused) => refusals.push([reason, refused]))
    const { client, closed } = await pair(guard)
    client.write(bigPublishHeader)
    await closed
    client.destroy()
    assert.deepEqual(
      refusals.map(([reason, refused]) => [reason, refused.clientId]),
      [['not_connect', undefined]],
    )
  })
})
