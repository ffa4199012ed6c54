import { createServer, type Server } from 'node:net'
import { Aedes, type AedesOptions } from 'aedes'

export interface EmbeddedBroker {
  aedes: Aedes
  server: Server
  port: number
  close(): Promise<void>
}

/** An in-process MQTT 3.1.1 broker (aedes) listening on host:port; port 0 picks a free one. */
export async function startEmbeddedBroker(
  port: number,
  host: string,
  options: AedesOptions = {},
): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker(options)
  const server = createServer(aedes.handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  const actualPort = typeof address === 'object' && address ? address.port : port
  return {
    aedes,
    server,
    port: actualPort,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        aedes.close(() => undefined)
      }),
  }
}
