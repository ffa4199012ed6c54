import { field, h } from '../dom.js'

const num = (min, max, placeholder) =>
  h('input', {
    type: 'number',
    min: String(min),
    max: String(max),
    step: '1',
    inputmode: 'numeric',
    placeholder,
  })

/** `host:port` lines → [{host, port}]; throws with a message naming the bad line. */
export function parseBrokers(text) {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  if (lines.length > 5) throw new Error('Brokers: at most 5.')
  return lines.map((line) => {
    const at = line.lastIndexOf(':')
    const host = line.slice(0, at)
    const port = Number(line.slice(at + 1))
    if (at < 1 || !/^[A-Za-z0-9.:-]+$/.test(host) || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`Brokers: "${line}" is not host:port (port 1–65535).`)
    }
    return { host, port }
  })
}

/** update_config: the ranges of PROTOCOL.md; empty fields stay unchanged on the device. */
export function updateConfigForm(config, { send, fail }) {
  const cadence = num(100, 60000, String(config.sampling_cadence_ms ?? 1000))
  const sendInterval = num(1, 3600, String(config.send_interval_s ?? 10))
  const hello = num(5, 3600, String(config.hello_interval_s ?? 30))
  const brokers = h('textarea', { rows: 2, placeholder: 'broker1.example.net:8883', spellcheck: 'false' })
  const form = h(
    'form',
    { class: 'command-form' },
    h('p', { class: 'hint' }, 'Fill only what should change; the placeholders show the current values.'),
    field('cfg-cadence', 'Sampling cadence (ms, 100–60000)', cadence),
    field('cfg-send', 'Send interval (s, 1–3600)', sendInterval),
    field('cfg-hello', 'Hello interval (s, 5–3600)', hello),
    field('cfg-brokers', 'Brokers (host:port, one per line, 1–5)', brokers),
    h('button', { type: 'submit' }, 'Send update_config'),
  )
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    if (!form.reportValidity()) return
    const params = {}
    if (cadence.value) params.sampling_cadence_ms = Number(cadence.value)
    if (sendInterval.value) params.send_interval_s = Number(sendInterval.value)
    if (hello.value) params.hello_interval_s = Number(hello.value)
    try {
      if (brokers.value.trim()) params.brokers = parseBrokers(brokers.value)
    } catch (error) {
      return fail(error.message)
    }
    if (Object.keys(params).length === 0) return fail('update_config: fill at least one field.')
    send('update_config', params)
  })
  return form
}

/** start_ota: the image to install; the device downloads it, checks the SHA-256 and reboots into it. */
export function startOtaForm({ send }) {
  const version = h('input', {
    type: 'text',
    required: true,
    pattern: '\\d+\\.\\d+\\.\\d+\\S*',
    placeholder: '1.5.0',
  })
  const url = h('input', {
    type: 'url',
    required: true,
    pattern: 'https://\\S+',
    placeholder: 'https://firmware.example.net/meter-1.5.0.bin',
  })
  const sha = h('input', {
    type: 'text',
    required: true,
    pattern: '[0-9a-fA-F]{64}',
    spellcheck: 'false',
    placeholder: '64 hex characters',
  })
  const size = h('input', { type: 'number', required: true, min: '1', step: '1', inputmode: 'numeric' })
  const form = h(
    'form',
    { class: 'command-form' },
    field('ota-version', 'Firmware version (semver)', version),
    field('ota-url', 'Image URL (https)', url),
    field('ota-sha', 'SHA-256 of the image', sha),
    field('ota-size', 'Image size (bytes)', size),
    h('button', { type: 'submit' }, 'Send start_ota'),
  )
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    if (!form.reportValidity()) return
    if (
      !window.confirm(
        `Start a firmware upgrade to ${version.value.trim()}? The device reboots when it is applied.`,
      )
    )
      return
    send('start_ota', {
      fw_version: version.value.trim(),
      fw_url: url.value.trim(),
      fw_sha256: sha.value.trim().toLowerCase(),
      fw_size_bytes: Number(size.value),
    })
  })
  return form
}
