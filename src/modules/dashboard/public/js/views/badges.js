import { h } from '../dom.js'

/** Small coloured labels that also carry the value as text (colour is never the only signal). */
export const connectionBadge = (status) =>
  h('span', { class: `badge conn-${status}`, dataset: { status } }, status)

export const severityBadge = (severity) => h('span', { class: `badge sev-${severity}` }, severity)

export const commandBadge = (status) =>
  h('span', { class: `badge cmd-${status}`, dataset: { status } }, status)
