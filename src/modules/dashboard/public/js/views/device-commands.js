import { api } from '../api.js'
import { announce, empty, h, panel, statusLine, table } from '../dom.js'
import { number, time } from '../format.js'
import { canOperate, getRole } from '../session.js'
import { commandBadge } from './badges.js'
import { startOtaForm, updateConfigForm } from './command-forms.js'

const FAST_MS = 1500
const SLOW_MS = 10_000
const OTA_DONE = new Set(['success', 'failed'])

/** Still moving: waiting for the broker or the device, or a firmware upgrade in progress. */
const isActive = (c) =>
  c.status === 'pending' ||
  c.status === 'sent' ||
  (c.status === 'accepted' && c.ota && !OTA_DONE.has(c.ota.state))

const stateKey = (c) => `${c.status}|${c.ota?.state ?? ''}|${c.ota?.progress_pct ?? ''}`

function otaCell(ota) {
  const pct = ota.progress_pct ?? 0
  const label = `${ota.state}${ota.progress_pct === null ? '' : ` ${number(pct, 0)} %`}${ota.confirmed ? ', confirmed by the device' : ''}`
  return h(
    'span',
    { class: 'ota', dataset: { otaState: ota.state } },
    h('progress', { max: 100, value: pct, 'aria-label': `Firmware upgrade ${label}` }),
    ' ',
    label,
    ota.detail ? h('small', { class: 'muted' }, ` — ${ota.detail}`) : null,
  )
}

function historyTable(commands) {
  if (commands.length === 0) return empty('No commands sent to this device yet.')
  const rows = commands.map((c) => [
    c.cmd,
    commandBadge(c.status),
    time(c.created_at),
    time(c.sent_at),
    time(c.acked_at),
    c.ota ? otaCell(c.ota) : (c.detail ?? ''),
  ])
  return table('Commands', ['Command', 'Status', 'Created', 'Sent', 'Answered', 'Detail'], rows, (i) => ({
    dataset: { cmdId: commands[i].cmd_id, cmd: commands[i].cmd, status: commands[i].status },
  }))
}

/** Send commands and follow each one: pending → sent → accepted/rejected/…/timeout, and OTA progress. */
export function commandsPanel({ scope, base, device, events }) {
  const status = statusLine()
  const history = h('div', {})
  const seen = new Map()
  /** Commands sent from this page: their changes go to the panel's status line, others to the announcer. */
  const mine = new Set()
  let active = false

  async function send(cmd, params) {
    status.ok(`Sending ${cmd}…`)
    try {
      const issued = await api(`${base}/commands`, { method: 'POST', body: { cmd, params } })
      status.ok(
        issued.status === 'pending'
          ? `${cmd} stored (no broker reachable now): it is sent as soon as a broker is back.`
          : `${cmd} ${issued.status}. Waiting for the device to answer…`,
      )
      seen.set(issued.cmd_id, `${issued.status}||`)
      mine.add(issued.cmd_id)
      active = true
      poll.now()
    } catch (error) {
      status.error(`${cmd} was not sent: ${error.message}`)
    }
  }
  const fail = (text) => status.error(text)
  const quick = (cmd, label, confirmText) =>
    h(
      'button',
      {
        type: 'button',
        class: cmd === 'reboot' ? 'danger' : '',
        dataset: { cmd },
        onclick: () => (!confirmText || window.confirm(confirmText)) && send(cmd, {}),
      },
      label,
    )

  const controls = canOperate()
    ? h(
        'div',
        { class: 'command-controls' },
        h(
          'div',
          { class: 'button-row' },
          quick('request_status', 'Request status'),
          quick('reboot', 'Reboot', `Reboot ${device.device_id}? It stops measuring for a few seconds.`),
        ),
        h(
          'details',
          {},
          h('summary', {}, 'Change configuration (update_config)'),
          updateConfigForm(device.config ?? {}, { send, fail }),
        ),
        h('details', {}, h('summary', {}, 'Firmware upgrade (start_ota)'), startOtaForm({ send })),
      )
    : h(
        'p',
        { class: 'hint' },
        `Sending commands needs the operator role; you are signed in as ${getRole()}.`,
      )

  const poll = scope.every(
    () => (active ? FAST_MS : SLOW_MS),
    async () => {
      try {
        const commands = await api(`${base}/commands?limit=15`, { signal: scope.signal })
        for (const c of commands) {
          const key = stateKey(c)
          const before = seen.get(c.cmd_id)
          const phase = key.split('|').slice(0, 2).join('|')
          if (before !== undefined && before.split('|').slice(0, 2).join('|') !== phase) {
            const text = `Command ${c.cmd}: ${c.status}${c.ota ? `, upgrade ${c.ota.state}` : ''}${c.detail ? ` (${c.detail})` : ''}`
            if (mine.has(c.cmd_id)) status.ok(text)
            else announce(text)
            events.dispatchEvent(new CustomEvent('command', { detail: c }))
          }
          seen.set(c.cmd_id, key)
        }
        active = commands.some(isActive)
        history.replaceChildren(historyTable(commands))
      } catch (error) {
        if (error.name !== 'AbortError') status.error(error.message)
        throw error
      }
    },
  )
  return panel('commands', 'Commands', controls, status.el, h('h3', {}, 'Recent commands'), history)
}
