import { createServer, type Server, type Socket } from 'node:net'
import { Aedes, type AedesOptions } from 'aedes'

export interface EmbeddedBroker {
  aedes: Aedes
  server: Server
  port: number
  /**
   * Asked for each new TCP connection before aedes sees it; false closes the socket at once (an
   * address refused anyway costs an accept and a close, not a client's setup and teardown).
   */
  admit: (socket: Socket) => boolean
  close(): Promise<void>
}

/** An in-process MQTT 3.1.1 broker (aedes) listening on host:port; port 0 picks a free one. */
export async function startEmbeddedBroker(
  port: number,
  host: string,
  options: AedesOptions = {},
): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker(options)
  const broker = { admit: (_socket: Socket) => true }
  const server = createServer((socket) => {
    if (broker.admit(socket)) aedes.handle(socket)
    else socket.destroy()
  })
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
  return Object.assign(broker, {
    aedes,
    server,
    port: actualPort,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        aedes.close(() => undefined)
      }),
  })
}
