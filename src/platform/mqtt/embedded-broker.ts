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
    const onError = (error: NodeJS.ErrnoException) => {
      aedes.close()
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(
              `MQTT_BROKER_PORT ${port} is already in use (another MQTT broker?): set MQTT_BROKER_PORT to a free port, or MQTT_URL to use that broker`,
            )
          : error,
      )
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
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
