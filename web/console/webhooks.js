// Webhooks: where the shop's endpoints stand (GET /admin/v1/webhooks: pending, delivered, dead,
// the oldest pending) and the delivery log (GET /admin/v1/webhooks/deliveries, filtered by
// status and order, newest first, paged), polled every two seconds; one delivery's attempts
// (GET .../deliveries/{id}) once asked for, polled with the rest, and "Deliver again" (POST
// .../redeliver) after a confirmation.

import { api, get, withQuery } from './api.js';
import { confirmDialog, h, ms, pager, render, say, table, when } from './ui.js';

const statuses = ['', 'pending', 'delivered', 'dead'];

export function mount(main) {
  const endpoints = h('div', { id: 'webhook-endpoints' });
  const deliveries = h('div', { id: 'webhook-deliveries' });
  const attempts = h('div', { id: 'webhook-attempts' });
  const status = h('select', { id: 'webhook-status', name: 'status' }, statuses.map((s) => h('option', { value: s, text: s || 'any' })));
  const order = h('input', { id: 'webhook-order', name: 'order_id', autocomplete: 'off' });
  let stopped = false;
  let selected = null; // the delivery whose attempts are shown (kept fresh by the poll)

  const showAttempts = async (d) => {
    selected = d;
    try {
      const one = await get(`/admin/v1/webhooks/deliveries/${d.id}`);
      render(attempts, h('h2', { text: `Delivery ${one.id}: ${one.event_type} ${one.event_id} to ${one.endpoint}` }),
        table([
          { label: 'Attempt', cell: (a) => String(a.attempt), num: true },
          { label: 'At', cell: (a) => when(a.at) },
          { label: 'HTTP', cell: (a) => (a.status === null ? '–' : String(a.status)), num: true },
          { label: 'Took', cell: (a) => ms(a.duration_ms), num: true },
          { label: 'Error', cell: (a) => a.error || '–' },
        ], one.history ?? [], { empty: 'Not tried yet.', rowAttrs: (a) => ({ 'data-attempt': a.attempt }) }));
    } catch (e) {
      render(attempts, h('p', { class: 'error', text: `Attempts unavailable: ${e}` }));
    }
  };

  const redeliver = async (d) => {
    if (!(await confirmDialog(`Deliver ${d.event_type} ${d.event_id} (order ${d.order_id}) to ${d.endpoint} again?`, 'Deliver again'))) {
      return;
    }
    try {
      await api('POST', `/admin/v1/webhooks/deliveries/${d.id}/redeliver`, { body: {} });
      say(`Delivery ${d.id} is due again.`);
      pages.again();
    } catch (e) {
      say(e, 'error');
    }
  };

  const list = async (before) => {
    const r = await get(withQuery('/admin/v1/webhooks/deliveries', {
      status: status.value, order_id: order.value.trim(), before, limit: 20,
    }));
    render(deliveries, table([
      { label: 'Id', cell: (d) => String(d.id), num: true },
      { label: 'Endpoint', cell: (d) => d.endpoint },
      { label: 'Event', cell: (d) => `${d.event_type} ${d.event_id}` },
      { label: 'Order', cell: (d) => h('a', { href: `#/orders/${encodeURIComponent(d.order_id)}`, text: d.order_id }) },
      { label: 'Status', cell: (d) => h('span', { class: `badge webhook-${d.status}`, text: d.status }) },
      { label: 'Attempts', cell: (d) => String(d.attempts), num: true },
      { label: 'Last answer', cell: (d) => (d.last_status === null ? (d.last_error || '–') : `HTTP ${d.last_status}${d.last_error ? ` (${d.last_error})` : ''}`) },
      { label: 'Next attempt', cell: (d) => when(d.next_attempt_at) },
      { label: '', cell: (d) => [
        h('button', { type: 'button', text: 'Attempts', onclick: () => showAttempts(d) }),
        h('button', { type: 'button', text: 'Deliver again', 'aria-label': `Deliver again ${d.id}`, onclick: () => redeliver(d) }),
      ] },
    ], r.items ?? [], { empty: 'No deliveries match.', rowAttrs: (d) => ({ 'data-delivery': d.id, 'data-status': d.status }) }),
    pages.buttons(r.next_before));
  };
  const pages = pager(list);

  const refresh = async () => {
    let w;
    try {
      w = await get('/admin/v1/webhooks');
    } catch (e) {
      render(endpoints, h('p', { class: 'error', text: `Webhooks unavailable: ${e}` }));
      return;
    }
    render(endpoints, table([
      { label: 'Endpoint', cell: (e) => e.name },
      { label: 'URL', cell: (e) => e.url ?? '(no longer configured)' },
      { label: 'Pending', cell: (e) => String(e.pending), num: true },
      { label: 'Delivered', cell: (e) => String(e.delivered), num: true },
      { label: 'Dead', cell: (e) => String(e.dead), num: true },
      { label: 'Oldest pending', cell: (e) => when(e.oldest_pending_at) },
    ], w.endpoints ?? [], { empty: 'No webhook endpoints (webhooks.endpoints) and no deliveries.', rowAttrs: (e) => ({ 'data-endpoint': e.name }) }));
    await pages.again();
    if (selected) {
      await showAttempts(selected);
    }
  };

  render(main, h('h1', { text: 'Webhooks' }), endpoints,
    h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); pages.first(); } },
      h('label', { for: 'webhook-status', text: 'Status' }), status,
      h('label', { for: 'webhook-order', text: 'Order' }), order,
      h('button', { type: 'submit', text: 'Filter' })),
    deliveries, attempts);
  let timer = null;
  const loop = async () => {
    try {
      await refresh();
    } catch (e) {
      say(e, 'error');
    }
    if (!stopped) {
      timer = setTimeout(loop, 2000);
    }
  };
  loop();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
