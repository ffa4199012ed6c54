import { startEmbeddedBroker } from '../../src/platform/mqtt/index.ts'

// A bare aedes on the port given, for the MQTT baseline of the embedded mode.
const broker = await startEmbeddedBroker(Number(process.argv[2] ?? 0), '127.0.0.1')
process.stdout.write(`${broker.port}\n`)
process.on('SIGTERM', () => broker.close().then(() => process.exit(0)))
