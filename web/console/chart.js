// Line charts with uPlot (loaded as a classic script: window.uPlot): time on x (unix seconds).

/// A chart in `el` titled `title`, one line per `series` ({label, stroke}); returns
/// {set(data)} where data is [xs, ys1, ys2, ...] (null: no value).
export function lineChart(el, title, series, { height = 200, unit = '' } = {}) {
  const width = Math.max(300, Math.min(el.clientWidth || 600, 900));
  const opts = {
    title,
    width,
    height,
    scales: { x: { time: true } },
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, spanGaps: false }))],
    axes: [{}, { label: unit, size: 60 }],
    legend: { live: true },
  };
  if (!window.uPlot) {
    el.textContent = `${title}: the chart library did not load.`;
    return { set() {}, destroy() {} };
  }
  const plot = new window.uPlot(opts, [[], ...series.map(() => [])], el);
  return {
    set: (data) => plot.setData(data),
    destroy: () => plot.destroy(),
  };
}
