"use strict";
// The latent explorer: unpacks the study's decoders and digit classifier from the JSON blob
// above and decodes, in float64, whatever point the reader picks. No network, no framework.

const SIDE = 28; // MNIST images are SIDE x SIDE
const PIXELS = SIDE * SIDE;
const DIGIT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]; // matplotlib's tab10, as the report
const KEY_STEP = 0.01; // an arrow key moves the marker this share of the map's width
const MAP_PAD = 0.08; // empty margin around the dots, as a share of their extent

// ---- unpacking -------------------------------------------------------------------------

async function inflate(base64) {
  const packed = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// One tensor of the buffer: float planes (most significant byte first) back into float32.
function unpack(buffer, spec) {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.format === "u8") return buffer.subarray(spec.offset, spec.offset + count);
  const planes = 3;
  const out = new Float32Array(count);
  const bits = new Uint32Array(out.buffer);
  for (let p = 0; p < planes; p++) {
    const start = spec.offset + p * count;
    const shift = 24 - 8 * p;
    for (let i = 0; i < count; i++) bits[i] |= buffer[start + i] << shift;
  }
  return out;
}

// ---- the models ------------------------------------------------------------------------

// A chain of dense layers as the exported data lists them: y = act(W x + b), W (out, in).
const ACTIVATIONS = { tanh: Math.tanh, relu: (v) => Math.max(v, 0), none: (v) => v };

function runLayers(layers, input) {
  let x = Float64Array.from(input);
  for (const { w, b, activation } of layers) {
    const act = ACTIVATIONS[activation];
    if (!act) throw new Error(`unknown activation ${activation}`);
    const out = new Float64Array(w.length / x.length);
    for (let i = 0; i < out.length; i++) {
      let s = b ? b[i] : 0;
      const row = i * x.length;
      for (let j = 0; j < x.length; j++) s += w[row + j] * x[j];
      out[i] = act(s);
    }
    x = out;
  }
  return x;
}

// The decoder's layers, then the label's logits where the model sees labels; pixel probabilities.
function decodeWith(dec, z, label) {
  const logits = runLayers(dec.layers, z);
  const useLabel = dec.label_logits && label >= 0;
  return logits.map((s, i) => 1 / (1 + Math.exp(-(useLabel ? s + dec.label_logits[label * PIXELS + i] : s))));
}

// A classifier's layers, then a softmax over its outputs.
function classifyWith(layers, pixels) {
  const x = runLayers(layers, pixels);
  const top = Math.max(...x);
  const e = x.map((v) => Math.exp(v - top));
  const total = e.reduce((a, b) => a + b, 0);
  return Array.from(e, (v) => v / total);
}

const argmax = (values) => values.indexOf(Math.max(...values));

// ---- drawing ---------------------------------------------------------------------------

function drawDigit(canvas, probabilities) {
  const small = document.createElement("canvas");
  small.width = SIDE;
  small.height = SIDE;
  const image = small.getContext("2d").createImageData(SIDE, SIDE);
  for (let i = 0; i < PIXELS; i++) {
    const v = Math.round(Math.min(Math.max(probabilities[i], 0), 1) * 255);
    image.data.set([v, v, v, 255], 4 * i);
  }
  small.getContext("2d").putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

function mapView(points, canvas) {
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < points.length; i += 2) {
    x0 = Math.min(x0, points[i]); x1 = Math.max(x1, points[i]);
    y0 = Math.min(y0, points[i + 1]); y1 = Math.max(y1, points[i + 1]);
  }
  const extent = Math.max(x1 - x0, y1 - y0, 1e-6) * (1 + 2 * MAP_PAD);
  const scale = canvas.width / extent; // canvas pixels per latent unit, equal on both axes
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  return {
    extent,
    centre: [cx, cy],
    toCanvas: (u, v) => [canvas.width / 2 + (u - cx) * scale, canvas.height / 2 - (v - cy) * scale],
    toLatent: (x, y) => [cx + (x - canvas.width / 2) / scale, cy - (y - canvas.height / 2) / scale],
  };
}

// ---- the page --------------------------------------------------------------------------

class Explorer {
  constructor(data, buffer) {
    const tensor = (name) => unpack(buffer, data.tensors[name]);
    this.data = data;
    this.labels = data.labels;
    this.images = tensor(data.images);
    const layers = (list) => list.map((l) => ({ ...l, w: tensor(l.weight), b: l.bias && tensor(l.bias) }));
    this.classifier = layers(data.classifier);
    this.models = new Map(data.models.map((m) => [m.id, {
      ...m,
      dec: {
        layers: layers(m.decoder.layers),
        label_logits: m.decoder.label_logits && tensor(m.decoder.label_logits),
      },
      q_y: m.q_y && layers(m.q_y),
      codes: tensor(m.codes),
      points: tensor(m.map),
      mean: tensor(m.pca.mean),
      axes: tensor(m.pca.axes),
    }]));
    this.el = (id) => document.getElementById(id);
    this.current = data.models[0].id;
    this.label = -1;
    this.marker = [0, 0];
    this.walk = { start: this.firstOf(1, 0), end: this.firstOf(0, 1), frame: 0, readings: [] };
    this.pickNext = "start";
  }

  firstOf(digit, fallback) {
    const i = this.labels.indexOf(digit);
    return i >= 0 ? i : Math.min(fallback, this.labels.length - 1);
  }

  get model() { return this.models.get(this.current); }

  // The latent point of map position (u, v): the code itself at z = 2, else mean + u a1 + v a2.
  backMap(id, u, v) {
    const m = this.models.get(id);
    const z = m.latent;
    return Array.from({ length: z }, (_, k) => m.mean[k] + u * m.axes[k] + v * m.axes[z + k]);
  }

  code(id, index) {
    const m = this.models.get(id);
    return Array.from(m.codes.subarray(index * m.latent, (index + 1) * m.latent));
  }

  decode(id, z, label = -1) {
    const m = this.models.get(id);
    if (z.length !== m.latent) throw new Error(`${id} takes ${m.latent} numbers, got ${z.length}`);
    if (m.q_y && label < 0) label = this.inferLabel(m, z);
    return decodeWith(m.dec, z, m.uses_labels ? label : -1);
  }

  // M2 given no label: the label its q(y|x) reads in the label-free decode of z, as M2's own
  // reconstruct reads one from its input.
  inferLabel(m, z) { return argmax(classifyWith(m.q_y, decodeWith(m.dec, z, -1))); }

  classify(pixels) { return classifyWith(this.classifier, pixels); }

  start() {
    const select = this.el("model");
    for (const m of this.models.values()) {
      select.add(new Option(`${m.kind.toUpperCase()}, z = ${m.latent}`, m.id));
    }
    this.el("study-title").textContent = this.data.title;
    this.el("legend").replaceChildren(...DIGIT_COLOURS.map((colour, d) => {
      const item = document.createElement("li");
      item.style.setProperty("--colour", colour);
      item.textContent = String(d);
      return item;
    }));
    for (const id of ["walk-start", "walk-end"]) this.el(id).max = this.labels.length - 1;
    this.el("walk-frame-slider").max = this.data.walk_steps - 1;
    this.listen();
    this.selectModel(this.current);
    this.el("status").textContent = `${this.models.size} models loaded.`;
  }

  listen() {
    const map = this.el("map");
    this.el("model").addEventListener("change", (e) => this.selectModel(e.target.value));
    this.el("label").addEventListener("change", (e) => {
      this.label = Number(e.target.value);
      this.redraw();
    });
    map.addEventListener("pointermove", (e) => this.moveTo(...this.pointerLatent(e)));
    map.addEventListener("pointerdown", (e) => {
      map.setPointerCapture(e.pointerId); // keep dragging the marker outside the map
      map.focus();
      this.moveTo(...this.pointerLatent(e));
    });
    map.addEventListener("click", (e) => this.pickWalkEnd(...this.pointerLatent(e)));
    map.addEventListener("keydown", (e) => this.onKey(e));
    for (const [id, end] of [["walk-start", "start"], ["walk-end", "end"]]) {
      this.el(id).addEventListener("change", (e) => this.setWalkEnd(end, Number(e.target.value)));
    }
    this.el("walk-frame-slider").addEventListener("input", (e) => this.showFrame(Number(e.target.value)));
  }

  pointerLatent(event) {
    const map = this.el("map");
    const box = map.getBoundingClientRect();
    const x = (event.clientX - box.left) * (map.width / box.width);
    const y = (event.clientY - box.top) * (map.height / box.height);
    return this.view.toLatent(x, y);
  }

  onKey(event) {
    const step = KEY_STEP * this.view.extent * (event.shiftKey ? 5 : 1);
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    this.moveTo(this.marker[0] + move[0], this.marker[1] + move[1]);
  }

  selectModel(id) {
    this.current = id;
    this.el("model").value = id;
    const m = this.model;
    this.el("label").disabled = !m.uses_labels;
    this.view = mapView(m.points, this.el("map"));
    const share = m.pca.variance_share;
    this.el("map-note").textContent = m.latent === 2
      ? "The map is the latent space itself: each dot is a test image's code (its mean)."
      + (m.uses_labels ? ` The ${m.kind.toUpperCase()}'s codes were taken with each image's true label.` : "")
      : `The map is a PCA projection of the ${m.latent}-D codes (the two axes hold `
      + `${(100 * (share[0] + share[1])).toFixed(0)}% of their variance). The point decoded is `
      + "the back-mapping mean + u·axis1 + v·axis2, which need not be where any image's code lies.";
    this.moveTo(...this.view.centre); // a new map starts with the marker in its middle
    this.setWalk();
  }

  moveTo(u, v) {
    this.marker = [u, v];
    this.redrawPoint();
  }

  redraw() {
    this.redrawPoint();
    this.setWalk();
  }

  redrawPoint() {
    const m = this.model;
    this.z = this.backMap(m.id, this.marker[0], this.marker[1]);
    this.decoded = this.decode(m.id, this.z, this.label);
    drawDigit(this.el("decoded"), this.decoded);
    const reading = argmax(this.classify(this.decoded));
    const at = this.z.length <= 4 ? `z = (${this.z.map((v) => v.toFixed(2)).join(", ")})`
      : `map point (${this.marker.map((v) => v.toFixed(2)).join(", ")})`;
    let own = "";
    if (m.q_y) {
      const q = classifyWith(m.q_y, this.decoded);
      const read = argmax(q);
      const given = this.label >= 0 ? `given label ${this.label}`
        : `decoded with the label q(y|x) reads in it`;
      own = ` M2 (${given}): its own q(y|x) reads a ${read} (q = ${q[read].toFixed(2)}).`;
    }
    this.el("point-info").textContent = `${at}; the classifier reads a ${reading}.${own}`;
    this.drawMap();
  }

  drawMap() {
    const canvas = this.el("map");
    const ctx = canvas.getContext("2d");
    const m = this.model;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    for (let i = 0; i < this.labels.length; i++) {
      const [x, y] = this.view.toCanvas(m.points[2 * i], m.points[2 * i + 1]);
      ctx.fillStyle = DIGIT_COLOURS[this.labels[i]];
      ctx.fillRect(x - 2, y - 2, 4, 4);
    }
    for (const [end, index] of [["A", this.walk.start], ["B", this.walk.end]]) {
      const [x, y] = this.view.toCanvas(m.points[2 * index], m.points[2 * index + 1]);
      ctx.strokeStyle = "#000";
      ctx.strokeRect(x - 5, y - 5, 10, 10);
      ctx.fillStyle = "#000";
      ctx.fillText(end, x + 7, y - 7);
    }
    const [mx, my] = this.view.toCanvas(...this.marker);
    ctx.strokeStyle = "#d00";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(mx, my, 7, 0, 2 * Math.PI);
    ctx.moveTo(mx - 11, my); ctx.lineTo(mx + 11, my);
    ctx.moveTo(mx, my - 11); ctx.lineTo(mx, my + 11);
    ctx.stroke();
    ctx.lineWidth = 1;
  }

  nearestPoint(u, v) {
    const p = this.model.points;
    let best = 0;
    let bestD = Infinity;
    for (let i = 0; i < this.labels.length; i++) {
      const d = (p[2 * i] - u) ** 2 + (p[2 * i + 1] - v) ** 2;
      if (d < bestD) { best = i; bestD = d; }
    }
    return best;
  }

  pickWalkEnd(u, v) {
    const end = this.pickNext;
    this.pickNext = end === "start" ? "end" : "start";
    this.setWalkEnd(end, this.nearestPoint(u, v));
  }

  setWalkEnd(end, index) {
    const n = this.labels.length;
    this.walk[end] = Math.min(Math.max(Math.round(index) || 0, 0), n - 1);
    this.setWalk();
  }

  // The walk's frames: (1 - t) a + t b for t evenly spaced in [0, 1], both ends included.
  walkFrame(frame) {
    const steps = this.data.walk_steps;
    const a = this.code(this.current, this.walk.start);
    const b = this.code(this.current, this.walk.end);
    const t = frame / (steps - 1);
    return a.map((ak, k) => (1 - t) * ak + t * b[k]);
  }

  setWalk() {
    const { start, end } = this.walk;
    this.el("walk-start").value = start;
    this.el("walk-end").value = end;
    const frames = Array.from({ length: this.data.walk_steps }, (_, i) => this.walkFrame(i));
    this.walk.readings = frames.map((z) => argmax(this.classify(this.decode(this.current, z, this.label))));
    const list = this.el("walk-readings");
    list.replaceChildren(...this.walk.readings.map((r) => {
      const item = document.createElement("span");
      item.textContent = String(r);
      return item;
    }));
    for (const [id, index] of [["walk-a", start], ["walk-b", end]]) {
      drawDigit(this.el(id), Array.from(this.images.subarray(index * PIXELS, (index + 1) * PIXELS), (v) => v / 255));
      this.el(`${id}-caption`).textContent = `#${index}, a ${this.labels[index]}`;
    }
    this.showFrame(Math.min(this.walk.frame, this.data.walk_steps - 1));
    this.drawMap();
  }

  showFrame(frame) {
    this.walk.frame = frame;
    this.el("walk-frame-slider").value = frame;
    this.walk.decoded = this.decode(this.current, this.walkFrame(frame), this.label);
    drawDigit(this.el("walk-frame"), this.walk.decoded);
    const probabilities = this.classify(this.walk.decoded);
    const reading = argmax(probabilities);
    this.el("walk-frame-number").textContent = `${frame + 1} of ${this.data.walk_steps}`;
    this.el("walk-reading").textContent =
      `frame ${frame + 1}: reads ${reading} (p = ${probabilities[reading].toFixed(2)})`;
    [...this.el("walk-readings").children].forEach((s, i) => s.classList.toggle("current", i === frame));
  }

  // Milliseconds to decode one frame, averaged over `repeats` decodes of the current point.
  timeDecode(repeats = 200) {
    const started = performance.now();
    for (let i = 0; i < repeats; i++) this.decode(this.current, this.z, this.label);
    return (performance.now() - started) / repeats;
  }
}

async function main() {
  const data = JSON.parse(document.getElementById("vaelab-data").textContent);
  const explorer = new Explorer(data, await inflate(data.blob));
  explorer.start();
  return explorer;
}

// The page's own hook, for readers who want the numbers and for the browser tests.
window.vaelabExplorer = { ready: main() };
window.vaelabExplorer.ready.catch((err) => {
  const status = document.getElementById("status");
  status.textContent = `The explorer could not start: ${err.message}`;
  status.classList.add("error");
  console.error(err);
});
