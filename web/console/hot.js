// Hot SKUs: the cluster's top SKUs by holds per second (GET /admin/v1/hot-skus), polled every
// second; one selected SKU's stock (GET /admin/v1/products/{sku}/stock) with a sell-through
// chart kept by this page while it is open; set or add stock.

import { api, get, withQuery } from './api.js';
import { lineChart } from './chart.js';
import { h, num, poll, render, say, table } from './ui.js';

export function mount(main) {
  const list = h('div', { id: 'hot-list' });
  const errors = h('p', { class: 'error', id: 'hot-errors' });
  const stockBox = h('div', { id: 'stock' });
  const chartBox = h('div', { class: 'chart', id: 'sell-through' });
  const skuInput = h('input', { id: 'stock-sku', name: 'sku', required: true, autocomplete: 'off' });
  const mode = h('select', { id: 'stock-mode', name: 'mode' }, h('option', { value: 'set', text: 'set on hand to' }), h('option', { value: 'add', text: 'add to on hand' }));
  const qty = h('input', { id: 'stock-qty', name: 'qty', type: 'number', step: '1', required: true });
  const form = h('form', {
    class: 'inline',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const sku = skuInput.value.trim();
      try {
        const { data } = await api('POST', `/admin/v1/products/${encodeURIComponent(sku)}/stock`, { body: { [mode.value]: Number(qty.value) } });
        say(`Stock of ${sku}: on hand ${data.on_hand}, available ${data.available}.`);
        select(sku);
      } catch (e) {
        say(e, 'error');
      }
    },
  }, h('label', { for: 'stock-sku', text: 'SKU' }), skuInput, h('label', { for: 'stock-mode', text: 'Change' }), mode,
  h('label', { for: 'stock-qty', text: 'Quantity' }), qty, h('button', { type: 'submit', text: 'Apply' }));

  render(main, h('h1', { text: 'Hot SKUs' }),
    h('p', { text: 'The most reserved SKUs across the cluster (holds placed per second on the owner), live.' }),
    list, errors,
    h('h2', { text: 'Stock' }), form,
    h('form', { class: 'inline', onsubmit: (ev) => { ev.preventDefault(); select(skuInput.value.trim()); } },
      h('button', { type: 'submit', text: 'Show SKU', 'aria-label': 'Show the SKU named above' })),
    stockBox, chartBox);

  let selected = null;
  let history = [[], [], [], []]; // t, sold, available, held
  let chart = null;
  const select = (sku) => {
    if (!sku) {
      return;
    }
    if (sku !== selected) {
      selected = sku;
      skuInput.value = sku;
      history = [[], [], [], []];
      chart?.destroy();
      chartBox.replaceChildren();
      chart = lineChart(chartBox, `Sell-through of ${sku}`, [
        { label: 'sold', stroke: '#d62728' }, { label: 'available', stroke: '#2ca02c' }, { label: 'held', stroke: '#ff7f0e' }]);
    }
    refreshStock();
  };
  const drawStock = (s) => {
    render(stockBox, table([
      { label: 'SKU', cell: (r) => r.sku },
      { label: 'On hand', cell: (r) => String(r.on_hand), num: true },
      { label: 'Held', cell: (r) => String(r.held), num: true },
      { label: 'Sold', cell: (r) => String(r.sold), num: true },
      { label: 'Available', cell: (r) => String(r.available), num: true },
      { label: 'Owner', cell: (r) => r.owner_node },
      { label: 'Epoch', cell: (r) => String(r.epoch), num: true },
    ], [s], { caption: `Stock of ${s.sku}`, rowAttrs: () => ({ 'data-sku': s.sku }) }));
    history[0].push(Date.now() / 1000);
    history[1].push(s.sold);
    history[2].push(s.available);
    history[3].push(s.held);
    if (history[0].length > 900) {
      history.forEach((a) => a.shift());
    }
    chart?.set(history);
  };
  const refreshStock = async () => {
    if (!selected) {
      return;
    }
    const sku = selected;
    try {
      const s = await get(`/admin/v1/products/${encodeURIComponent(sku)}/stock`);
      if (sku === selected) {
        drawStock(s);
      }
    } catch (e) {
      render(stockBox, h('p', { class: 'error', text: `${sku}: ${e}` }));
    }
  };

  const stopList = poll(async () => {
    let hot;
    try {
      hot = await get(withQuery('/admin/v1/hot-skus', { limit: 20 }));
    } catch (e) {
      render(list, h('p', { class: 'error', text: `Hot SKUs unavailable: ${e}` }));
      return;
    }
    render(list, table([
      { label: 'SKU', cell: (r) => h('button', { type: 'button', class: 'link', text: r.sku, onclick: () => select(r.sku) }) },
      { label: 'Holds/s', cell: (r) => num(r.rate, 2), num: true },
      { label: 'Reservations', cell: (r) => String(r.reservations), num: true },
      { label: 'On hand', cell: (r) => String(r.on_hand), num: true },
      { label: 'Held', cell: (r) => String(r.held), num: true },
      { label: 'Sold', cell: (r) => String(r.sold), num: true },
      { label: 'Available', cell: (r) => String(r.available), num: true },
      { label: 'Owner', cell: (r) => `${r.owner_node} (epoch ${r.epoch})` },
    ], hot.items ?? [], { caption: `Top SKUs over the last ${hot.window_s ?? '?'} s`, empty: 'No holds placed recently.', rowAttrs: (r) => ({ 'data-sku': r.sku }) }));
    errors.textContent = (hot.errors ?? []).map((e) => `${e.node_id}: ${e.message}`).join('; ');
  }, 1000);
  const stopStock = poll(refreshStock, 1000);
  return () => {
    stopList();
    stopStock();
    chart?.destroy();
  };
}
