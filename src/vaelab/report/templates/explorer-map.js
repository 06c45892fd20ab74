"use strict";
// The latent map: where each test image's code lies on the two shown dimensions, with axes,
// the origin, the walk and the marker. Map coordinates are the codes' coordinates on the two
// axes (at z = 2 the code itself), so (0, 0) is the origin or, at z > 2, its projection.

const DIGIT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]; // matplotlib's tab10, as the report
const MAP_PAD = 0.06; // empty margin around the dots, as a share of their extent
const PLOT_PAD = { left: 46, right: 12, top: 12, bottom: 38 }; // canvas px for ticks and titles
const WALK_COLOUR = "#000";
const FRAME_COLOUR = "#ffbf00"; // the walk's current frame
const MARKER_COLOUR = "#d00"; // the decoded point

// How map coordinates (u, v) and canvas pixels (x, y) map to each other: one scale on both
// axes, every dot and each point of `also` (the origin) inside the plot.
function mapView(points, canvas, also = []) {
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  const include = (u, v) => {
    x0 = Math.min(x0, u); x1 = Math.max(x1, u);
    y0 = Math.min(y0, v); y1 = Math.max(y1, v);
  };
  for (let i = 0; i < points.length; i += 2) include(points[i], points[i + 1]);
  for (const [u, v] of also) include(u, v);
  const box = {
    left: PLOT_PAD.left,
    top: PLOT_PAD.top,
    width: canvas.width - PLOT_PAD.left - PLOT_PAD.right,
    height: canvas.height - PLOT_PAD.top - PLOT_PAD.bottom,
  };
  const grow = 1 + 2 * MAP_PAD;
  const scale = Math.min(box.width / (Math.max(x1 - x0, 1e-6) * grow),
    box.height / (Math.max(y1 - y0, 1e-6) * grow)); // canvas pixels per latent unit
  const [cx, cy] = [(x0 + x1) / 2, (y0 + y1) / 2];
  const [px, py] = [box.left + box.width / 2, box.top + box.height / 2];
  return {
    box,
    extent: box.width / scale, // latent units across the plot
    centre: [cx, cy],
    toCanvas: (u, v) => [px + (u - cx) * scale, py - (v - cy) * scale],
    toLatent: (x, y) => [cx + (x - px) / scale, cy - (y - py) / scale],
  };
}

// Round steps (1, 2 or 5 times a power of ten) giving about `count` ticks over [lo, hi].
function ticks(lo, hi, count = 5) {
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) {
    out.push({ at: t, text: (Math.abs(t) < step / 2 ? 0 : t).toFixed(digits) });
  }
  return out;
}

function drawAxes(ctx, view, titles) {
  const { left, top, width, height } = view.box;
  const [u0, v0] = view.toLatent(left, top + height);
  const [u1, v1] = view.toLatent(left + width, top);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#444";
  ctx.lineWidth = 1;
  for (const { at, text } of ticks(u0, u1)) {
    const [x] = view.toCanvas(at, 0);
    ctx.strokeStyle = at === 0 ? "#bbb" : "#eee";
    line(ctx, x, top, x, top + height);
    ctx.textAlign = "center";
    ctx.fillText(text, x, top + height + 12);
  }
  for (const { at, text } of ticks(v0, v1)) {
    const [, y] = view.toCanvas(0, at);
    ctx.strokeStyle = at === 0 ? "#bbb" : "#eee";
    line(ctx, left, y, left + width, y);
    ctx.textAlign = "right";
    ctx.fillText(text, left - 4, y + 4);
  }
  ctx.strokeStyle = "#999";
  ctx.strokeRect(left + 0.5, top + 0.5, width - 1, height - 1);
  ctx.textAlign = "center";
  ctx.fillText(titles[0], left + width / 2, top + height + 30);
  ctx.save();
  ctx.translate(12, top + height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(titles[1], 0, 0);
  ctx.restore();
}

// Text with a white halo, readable over the dots.
function label(ctx, text, x, y) {
  ctx.save();
  ctx.textAlign = "left";
  ctx.lineWidth = 3;
  ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
  ctx.strokeText(text, x, y);
  ctx.fillStyle = "#000";
  ctx.fillText(text, x, y);
  ctx.restore();
}

function line(ctx, x0, y0, x1, y1) {
  ctx.beginPath();
  ctx.moveTo(Math.round(x0) + 0.5, Math.round(y0) + 0.5);
  ctx.lineTo(Math.round(x1) + 0.5, Math.round(y1) + 0.5);
  ctx.stroke();
}

// The origin: a black plus in a white ring, labelled.
function drawOrigin(ctx, view) {
  const [x, y] = view.toCanvas(0, 0);
  ctx.fillStyle = "#fff";
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.arc(x, y, 6, 0, 2 * Math.PI);
  ctx.fill();
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x - 4, y); ctx.lineTo(x + 4, y);
  ctx.moveTo(x, y - 4); ctx.lineTo(x, y + 4);
  ctx.stroke();
  ctx.lineWidth = 1;
  label(ctx, "origin", x + 8, y + 14);
}

function drawDots(ctx, view, points, labels) {
  for (let i = 0; i < labels.length; i++) {
    const [x, y] = view.toCanvas(points[2 * i], points[2 * i + 1]);
    ctx.fillStyle = DIGIT_COLOURS[labels[i]];
    ctx.fillRect(x - 2, y - 2, 4, 4);
  }
}

// The walk: a line between its ends, a tick at each frame, the current frame as a disc.
function drawWalk(ctx, view, a, b, frames, current) {
  const [ax, ay] = view.toCanvas(...a);
  const [bx, by] = view.toCanvas(...b);
  ctx.strokeStyle = WALK_COLOUR;
  ctx.fillStyle = WALK_COLOUR;
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(ax, ay);
  ctx.lineTo(bx, by);
  ctx.stroke();
  for (let f = 0; f < frames; f++) {
    const t = f / (frames - 1);
    ctx.beginPath();
    ctx.arc(ax + t * (bx - ax), ay + t * (by - ay), 2, 0, 2 * Math.PI);
    ctx.fill();
  }
  for (const [x, y, name] of [[ax, ay, "start"], [bx, by, "end"]]) {
    ctx.strokeRect(x - 5, y - 5, 10, 10);
    label(ctx, name, x + 8, y - 6);
  }
  const t = current / (frames - 1);
  ctx.fillStyle = FRAME_COLOUR;
  ctx.beginPath();
  ctx.arc(ax + t * (bx - ax), ay + t * (by - ay), 6, 0, 2 * Math.PI);
  ctx.fill();
  ctx.stroke();
  ctx.lineWidth = 1;
}

// A ring around the test image under the pointer.
function drawHover(ctx, view, u, v) {
  const [x, y] = view.toCanvas(u, v);
  ctx.strokeStyle = "#000";
  ctx.beginPath();
  ctx.arc(x, y, 5, 0, 2 * Math.PI);
  ctx.stroke();
}

// The decoded point: a red cross-hair.
function drawMarker(ctx, view, u, v) {
  const [x, y] = view.toCanvas(u, v);
  ctx.strokeStyle = MARKER_COLOUR;
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.arc(x, y, 7, 0, 2 * Math.PI);
  ctx.moveTo(x - 11, y); ctx.lineTo(x + 11, y);
  ctx.moveTo(x, y - 11); ctx.lineTo(x, y + 11);
  ctx.stroke();
  ctx.lineWidth = 1;
}
