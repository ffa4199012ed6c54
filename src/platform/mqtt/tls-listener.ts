import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { createServer, type Server } from 'node:tls'
import type { Aedes } from 'aedes'

export interface TlsListenerOptions {
  port: number
  host: string
  /** PEM files: the broker's certificate and key; the CA that signs device certificates (mTLS). */
  certFile: string
  keyFile: string
  caFile?: string
  /** Require a client certificate signed by the CA (handshake fails without one). */
  requireClientCert: boolean
  /** Asked for each TCP connection before its handshake; false closes it (see EmbeddedBroker.admit). */
  admit?: (socket: Socket) => boolean
  /** Asked for each established TLS connection before aedes handles it; false closes it. */
  prepare?: (socket: Socket) => boolean
}

export interface TlsListener {
  server: Server
  port: number
  close(): Promise<void>
}

/**
 * An MQTT-over-TLS listener (8883 by convention) in front of the same aedes instance. With
 * `requireClientCert`, the TLS handshake itself refuses clients without a certificate signed by
 * the CA; the broker's authenticate then matches the certificate's CN against the client id.
 */
export async function startTlsListener(aedes: Aedes, o: TlsListenerOptions): Promise<TlsListener> {
  if (o.requireClientCert && !o.caFile) throw new Error('mTLS needs MQTT_TLS_CA (the CA of the devices)')
  const server = createServer(
    {
      cert: readFileSync(o.certFile),
      key: readFileSync(o.keyFile),
      ca: o.caFile ? readFileSync(o.caFile) : undefined,
      requestCert: o.requireClientCert,
      rejectUnauthorized: o.requireClientCert,
      minVersion: 'TLSv1.2',
    },
    (socket) => {
      if (o.prepare && !o.prepare(socket)) socket.destroy()
      else aedes.handle(socket)
    },
  )
  // A failed handshake (no or untrusted certificate) is the client's problem, not the server's.
  server.on('tlsClientError', () => undefined)
  // Before the handshake, the costly part for a refused address.
  server.on('connection', (socket: Socket) => {
    if (o.admit && !o.admit(socket)) socket.destroy()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  return {
    server,
    port: typeof address === 'object' && address ? address.port : o.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
