// Orders: search (GET /admin/v1/orders), one order with its timeline and refunds
// (GET /admin/v1/orders/{id}), and refunds in full or per line (POST .../refunds with a fresh
// Idempotency-Key per attempt).

import { api, get, newKey, withQuery } from './api.js';
import { confirmDialog, h, money, pager, render, say, table, when } from './ui.js';

const statuses = ['', 'pending', 'paid', 'confirmed', 'failed', 'cancelled'];

function isoOf(local) {
  return local ? new Date(local).toISOString() : '';
}

function searchPage(main) {
  const q = h('input', { id: 'q', name: 'q', autocomplete: 'off' });
  const status = h('select', { id: 'status-filter', name: 'status' }, statuses.map((s) => h('option', { value: s, text: s || 'any' })));
  const customer = h('input', { id: 'customer', name: 'customer', autocomplete: 'off' });
  const since = h('input', { id: 'since', name: 'since', type: 'datetime-local' });
  const until = h('input', { id: 'until', name: 'until', type: 'datetime-local' });
  const results = h('div', { id: 'order-results' });

  const search = async (cursor) => {
    try {
      const r = await get(withQuery('/admin/v1/orders', {
        q: q.value.trim(), status: status.value, customer: customer.value.trim(),
        since: isoOf(since.value), until: isoOf(until.value), limit: 20, cursor,
      }));
      render(results, table([
        { label: 'Order', cell: (o) => h('a', { href: `#/orders/${encodeURIComponent(o.order_id)}`, text: o.order_id }) },
        { label: 'Status', cell: (o) => h('span', { class: `badge ${o.status}`, text: o.status }) },
        { label: 'Customer', cell: (o) => o.customer_id || '–' },
        { label: 'Total', cell: (o) => money(o.total_cents, o.currency), num: true },
        { label: 'Refunded', cell: (o) => money(o.refunded_cents, o.currency), num: true },
        { label: 'Gateway', cell: (o) => o.gateway || '–' },
        { label: 'Created', cell: (o) => when(o.created_at) },
      ], r.items ?? [], { empty: 'No orders match.', rowAttrs: (o) => ({ 'data-order': o.order_id }) }),
      pages.buttons(r.next_cursor));
    } catch (e) {
      render(results, h('p', { class: 'error', text: `Search failed: ${e}` }));
    }
  };

  const pages = pager(search);
  render(main, h('h1', { text: 'Orders' }),
    h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); pages.first(); } },
      h('label', { for: 'q', text: 'Order id or prefix' }), q,
      h('label', { for: 'status-filter', text: 'Status' }), status,
      h('label', { for: 'customer', text: 'Customer' }), customer,
      h('label', { for: 'since', text: 'Since' }), since,
      h('label', { for: 'until', text: 'Until' }), until,
      h('button', { type: 'submit', text: 'Search' })),
    results);
  pages.first();
  return () => {};
}

function orderPage(main, id) {
  const box = h('div', { id: 'order' });
  render(main, h('p', {}, h('a', { href: '#/orders', text: '← All orders' })), box);

  const refund = async (o, lines) => {
    const what = lines ? lines.map((l) => `${l.qty} × ${l.sku}`).join(', ') : 'everything not yet refunded';
    if (!(await confirmDialog(`Refund ${what} of order ${o.order_id} through ${o.payment?.gateway ?? 'its gateway'}?`, 'Refund'))) {
      return;
    }
    try {
      const r = await api('POST', `/admin/v1/orders/${encodeURIComponent(o.order_id)}/refunds`, {
        body: lines ? { lines } : {}, headers: { 'Idempotency-Key': newKey() },
      });
      const d = r.data;
      say(`Refund ${d.refund_id}: ${money(d.amount_cents, o.currency)}, ${d.status}${r.status === 202 ? ' (the gateway has not answered yet; it will be reconciled)' : ''}.`);
    } catch (e) {
      say(e, 'error');
    }
    load();
  };

  const load = async () => {
    let o;
    try {
      o = await get(`/admin/v1/orders/${encodeURIComponent(id)}`);
    } catch (e) {
      render(box, h('p', { class: 'error', text: `Order ${id}: ${e}` }));
      return;
    }
    const refunded = new Map();
    for (const r of o.refunds ?? []) {
      if (r.status !== 'failed') {
        for (const l of r.lines ?? []) {
          refunded.set(l.sku, (refunded.get(l.sku) ?? 0) + l.qty);
        }
      }
    }
    const qtyInputs = new Map();
    const lineRows = (o.lines ?? []).map((l) => ({ ...l, left: l.qty - (refunded.get(l.sku) ?? 0) }));
    render(box,
      h('h1', { text: `Order ${o.order_id}` }),
      h('dl', { class: 'facts' },
        h('dt', { text: 'Status' }), h('dd', {}, h('span', { class: `badge ${o.status}`, id: 'order-status', text: o.status })),
        h('dt', { text: 'Customer' }), h('dd', { text: o.customer_id || '–' }),
        h('dt', { text: 'Cart' }), h('dd', { text: o.cart_id }),
        h('dt', { text: 'Total' }), h('dd', { text: money(o.total_cents, o.currency) }),
        h('dt', { text: 'Refunded' }), h('dd', { id: 'order-refunded', text: money(o.refunded_cents ?? 0, o.currency) }),
        h('dt', { text: 'Payment' }), h('dd', { text: o.payment ? `${o.payment.gateway}, charge ${o.payment.charge_id}, ${money(o.payment.amount_cents, o.currency)}` : '–' }),
        h('dt', { text: 'Created' }), h('dd', { text: when(o.created_at) })),
      h('h2', { text: 'Lines' }),
      table([
        { label: 'SKU', cell: (l) => l.sku },
        { label: 'Qty', cell: (l) => String(l.qty), num: true },
        { label: 'Price', cell: (l) => money(l.price_cents, o.currency), num: true },
        { label: 'Not refunded', cell: (l) => String(l.left), num: true },
        {
          label: 'Refund qty',
          cell: (l) => {
            const inp = h('input', { type: 'number', min: '0', max: String(l.left), value: '0', 'aria-label': `Refund quantity of ${l.sku}`, class: 'qty' });
            qtyInputs.set(l.sku, inp);
            return inp;
          },
        },
      ], lineRows),
      h('div', { class: 'row' },
        h('button', { type: 'button', id: 'refund-full', text: 'Refund in full', onclick: () => refund(o, null) }),
        h('button', {
          type: 'button', id: 'refund-lines', text: 'Refund the quantities above',
          onclick: () => {
            const lines = [...qtyInputs].map(([sku, inp]) => ({ sku, qty: Number(inp.value) })).filter((l) => l.qty > 0);
            if (lines.length === 0) {
              say('Enter a quantity to refund on at least one line.', 'error');
              return;
            }
            refund(o, lines);
          },
        })),
      h('h2', { text: 'Timeline' }),
      h('ol', { class: 'timeline', id: 'timeline' }, (o.timeline ?? []).map((t) => h('li', { 'data-event': t.event },
        h('time', { datetime: t.at, text: when(t.at) }), ' ', h('strong', { text: t.event }), t.detail ? ` — ${t.detail}` : ''))),
      h('h2', { text: 'Refunds' }),
      table([
        { label: 'Refund', cell: (r) => r.refund_id },
        { label: 'Amount', cell: (r) => money(r.amount_cents, o.currency), num: true },
        { label: 'Lines', cell: (r) => (r.lines ?? []).map((l) => `${l.qty} × ${l.sku}`).join(', ') },
        { label: 'Status', cell: (r) => h('span', { class: `badge ${r.status}`, text: r.status }) },
        { label: 'When', cell: (r) => when(r.created_at) },
      ], o.refunds ?? [], { empty: 'No refunds.' }));
  };
  load();
  return () => {};
}

export function mount(main, params) {
  return params[0] ? orderPage(main, params[0]) : searchPage(main);
}
