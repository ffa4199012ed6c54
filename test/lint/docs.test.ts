import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { Compile } from 'typebox/compile'
import { CONFIGURATION_MD, renderConfiguration, undocumented } from '../../scripts/docs-config.ts'
import { COMMAND_NAMES, canonicalJson, verifyCommand } from '../../src/modules/commands/index.ts'
import { parseMessage, Rejected } from '../../src/modules/ingest/index.ts'
import { DEVICE_KINDS, MESSAGE_KINDS, type MessageKindName } from '../../src/protocol/index.ts'

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')

/** Fenced blocks of a Markdown file with their info string (```json topic=iot/x/telemetry). */
function fences(markdown: string): { info: string; body: string }[] {
  return [...markdown.matchAll(/^ *```([^\n]*)\n([\s\S]*?)^ *```$/gm)].map((m) => ({
    info: (m[1] as string).trim(),
    body: (m[2] as string).replace(/^ {2}/gm, ''),
  }))
}

describe('docs/PROTOCOL.md agrees with the server', () => {
  const doc = read('docs/PROTOCOL.md')
  const blocks = fences(doc)
  const examples = blocks.filter((b) => /^json topic=/.test(b.info))
  const YEAR_MS = 365 * 86_400_000
  // The examples carry fixed dates: the parser's window is opened wide, everything else is as served.
  const limits = { maxBytes: 64 * 1024, maxFutureMs: 100 * YEAR_MS, maxPastMs: 100 * YEAR_MS }

  test('every device → server example is accepted by the ingest parser', () => {
    assert.ok(examples.length >= 9, `only ${examples.length} examples found`)
    const kinds = new Set<string>()
    for (const { info, body } of examples) {
      const topic = info.replace('json topic=', '')
      const parsed = parseMessage(topic, Buffer.from(body), Date.now(), limits)
      assert.ok(!(parsed instanceof Rejected), `${topic}: ${(parsed as Rejected).detail}\n${body}`)
      kinds.add(parsed.category + (parsed.category === 'telemetry' && parsed.v1 ? '_v1' : ''))
    }
    // One example of every device → server kind of the protocol table, and of v1 telemetry.
    assert.deepEqual([...kinds].sort(), [...DEVICE_KINDS, 'telemetry_v1'].sort())
  })

  test('the binary telemetry example is byte for byte the first JSON telemetry example', () => {
    const hex = blocks.find((b) => b.info.startsWith('hex topic='))
    assert.ok(hex, 'no ```hex topic= block')
    const topic = hex.info.replace('hex topic=', '')
    const bytes = Buffer.from(hex.body.replace(/#[^\n]*/g, '').replace(/\s+/g, ''), 'hex')
    const binary = parseMessage(topic, bytes, Date.now(), limits)
    assert.ok(!(binary instanceof Rejected), `binary example: ${(binary as Rejected).detail}`)
    const json = examples.find((b) => b.info === `json topic=${topic}`)
    assert.ok(json, `no JSON example on ${topic}`)
    assert.deepEqual(binary, parseMessage(topic, Buffer.from(json.body), Date.now(), limits))
  })

  test('the topics table is the protocol table: one row per kind, its direction, QoS and retain', () => {
    const rows = doc
      .split('\n')
      .filter((line) => line.startsWith('| `iot/{id}/'))
      .map((line) => line.split('|').map((cell) => cell.trim()))
    assert.equal(rows.length, Object.keys(MESSAGE_KINDS).length, 'one row per message kind')
    for (const name of Object.keys(MESSAGE_KINDS) as MessageKindName[]) {
      const kind = MESSAGE_KINDS[name]
      const row = rows.find((cells) => cells[1] === `\`iot/{id}/${kind.suffix}\``)
      assert.ok(row, `no row for iot/{id}/${kind.suffix}`)
      const [, , direction, qos, retained] = row
      const from = kind.direction === 'device→server' ? 'meter → server' : 'server → meter'
      assert.ok(direction?.startsWith(from), `${name}: direction ${direction}`)
      assert.equal(qos, String(kind.qos), `${name}: QoS`)
      assert.equal(retained, kind.retained ? '**yes**' : 'no', `${name}: retained`)
    }
  })

  test('the command example is signed as stated: key + canonical JSON give the documented hex', () => {
    const command = blocks.find((b) => b.info === 'json command')
    assert.ok(command, 'no ```json command block')
    const envelope = JSON.parse(command.body) as Record<string, unknown>
    assert.ok((COMMAND_NAMES as readonly string[]).includes(envelope.cmd as string))
    assert.ok(Compile(MESSAGE_KINDS.command.schema).Check(envelope), "the protocol table's command schema")
    const key = /key \(hex\): `([0-9a-f]{64})`/.exec(doc)?.[1]
    const canonical = blocks.find((b) => b.info === 'text canonical')?.body.trim()
    const hex = /HMAC-SHA256 \(hex\): `([0-9a-f]{64})`/.exec(doc)?.[1]
    assert.ok(key && canonical && hex, 'the worked example names a key, a canonical JSON and a hex signature')
    const { sig, ...unsigned } = envelope
    assert.equal(canonicalJson(unsigned), canonical, 'the canonical JSON is that of the envelope')
    const computed = createHmac('sha256', Buffer.from(key, 'hex')).update(canonical).digest('hex')
    assert.equal(hex, computed, 'the documented hex is HMAC-SHA256(key bytes, canonical JSON)')
    assert.equal(sig, hex, 'the envelope carries that signature')
    assert.equal(verifyCommand(envelope, key), true, "the server's own check accepts it")
    assert.ok(doc.includes(`hexkey:${key}`) && doc.includes(`printf '%s' '${canonical}'`), 'the openssl line')
  })
})

describe('docs/CONFIGURATION.md is generated from the schema', () => {
  test('every variable has a description', () => {
    assert.deepEqual(undocumented(), [], 'describe them in src/config/')
  })

  test('the file is what `npm run docs:config` writes', () => {
    assert.equal(
      readFileSync(CONFIGURATION_MD, 'utf8'),
      renderConfiguration(),
      'docs/CONFIGURATION.md is stale: run npm run docs:config',
    )
  })
})
