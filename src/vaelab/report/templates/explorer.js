// The latent explorer's page: the map, the point decoded at its marker, the test image under
// the pointer, and the walk (explorer-walk.js). It reads the JSON blob above with
// explorer-nets.js and draws the map with explorer-map.js.

const KEY_STEP = 0.01; // an arrow key moves the marker this share of the map's width
const HOVER_PX = 6; // a dot within this many canvas pixels of the pointer is "under" it

class Explorer {
  constructor(data, buffer) {
    const tensor = (name) => unpack(buffer, data.tensors[name]);
    this.data = data;
    this.labels = data.labels;
    this.index = data.index; // each image's number among the study's test images
    this.rowOf = new Map(data.index.map((number, row) => [number, row]));
    this.images = tensor(data.images);
    const layers = (list) => list.map((l) => ({ ...l, w: tensor(l.weight), b: l.bias && tensor(l.bias) }));
    this.classifier = layers(data.classifier);
    this.models = new Map(data.models.map((m) => [m.id, this.unpackModel(m, tensor, layers)]));
    this.el = (id) => document.getElementById(id);
    this.current = data.models[0].id;
    this.label = -1;
    this.marker = [0, 0]; // the point decoded: under the pointer, else the pin
    this.pin = [0, 0]; // where the last click or arrow key left the marker
    this.hover = -1; // the row of the test image under the pointer
    this.dragging = false;
    this.walk = new Walk(this, ...this.openingWalk());
  }

  unpackModel(m, tensor, layers) {
    const mean = tensor(m.pca.mean);
    const axes = tensor(m.pca.axes);
    const codes = tensor(m.codes);
    const z = m.latent;
    const dot = (k) => mean.reduce((s, v, j) => s + v * axes[k * z + j], 0);
    const centre = Array.from({ length: z }, (_, j) => {
      let s = 0;
      for (let i = j; i < codes.length; i += z) s += codes[i];
      return s / (codes.length / z);
    });
    return {
      ...m,
      dec: {
        layers: layers(m.decoder.layers),
        label_logits: m.decoder.label_logits && tensor(m.decoder.label_logits),
      },
      q_y: m.q_y && layers(m.q_y),
      codes,
      points: tensor(m.map),
      mean,
      axes,
      meanOnAxes: [dot(0), dot(1)],
      centreDistance: Math.hypot(...centre),
    };
  }

  // The report's first walk when the page holds both its ends, else a 1 and a 0.
  openingWalk() {
    const [a, b] = (this.data.walks[0] || []).map((n) => this.rowOf.get(n));
    if (a !== undefined && b !== undefined) return [a, b];
    return [this.firstOf(1, 0), this.firstOf(0, 1)];
  }

  firstOf(digit, fallback) {
    const i = this.labels.indexOf(digit);
    return i >= 0 ? i : Math.min(fallback, this.labels.length - 1);
  }

  get model() { return this.models.get(this.current); }

  // "#16, a 1 (MNIST test image 83)": a test image as the report numbers it.
  describe(row) {
    const mnist = this.data.mnist_index ? ` (MNIST test image ${this.data.mnist_index[row]})` : "";
    return `#${this.index[row]}, a ${this.labels[row]}${mnist}`;
  }

  testImage(row) {
    return Array.from(this.images.subarray(row * PIXELS, (row + 1) * PIXELS), (v) => v / 255);
  }

  // The latent point at map position (u, v): the code itself at z = 2, else the point of the
  // plane through the codes' mean along the two axes whose coordinates on them are (u, v).
  backMap(id, u, v) {
    const m = this.models.get(id);
    const z = m.latent;
    const [du, dv] = [u - m.meanOnAxes[0], v - m.meanOnAxes[1]];
    return Array.from({ length: z }, (_, k) => m.mean[k] + du * m.axes[k] + dv * m.axes[z + k]);
  }

  code(id, row) {
    const m = this.models.get(id);
    return Array.from(m.codes.subarray(row * m.latent, (row + 1) * m.latent));
  }

  mapPoint(row) {
    const p = this.model.points;
    return [p[2 * row], p[2 * row + 1]];
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
    const data = this.data;
    const select = this.el("model");
    for (const m of this.models.values()) {
      select.add(new Option(`${m.kind.toUpperCase()}, z = ${m.latent}`, m.id));
    }
    this.el("study-title").textContent = data.title;
    if (data.left_out) {
      const note = this.el("left-out");
      note.textContent = `Not shown here: ${data.left_out.join(", ")} (this page evaluates dense decoders only).`;
      note.hidden = false;
    }
    const seeds = data.seeds.length > 1 ? ` (the study's seeds: ${data.seeds.join(", ")})` : "";
    this.el("seed-note").textContent = (data.seed === null ? "" : `Models of run seed ${data.seed}${seeds}; `)
      + `${this.labels.length} of the ${data.test_images} test images.`;
    this.el("report-link").href = data.report;
    this.el("legend").replaceChildren(...DIGIT_COLOURS.map((colour, d) => {
      const item = document.createElement("li");
      item.style.setProperty("--colour", colour);
      item.textContent = String(d);
      return item;
    }));
    this.walk.build();
    this.showUnder();
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
    map.addEventListener("pointermove", (e) => this.onPointer(e));
    map.addEventListener("pointerdown", (e) => {
      map.setPointerCapture(e.pointerId); // dragging keeps moving the pin outside the map
      map.focus();
      this.dragging = true;
      this.pinAt(...this.pointerLatent(e));
    });
    map.addEventListener("pointerup", () => { this.dragging = false; });
    map.addEventListener("pointerleave", () => {
      this.hover = -1;
      this.showUnder();
      this.moveTo(...this.pin);
    });
    map.addEventListener("keydown", (e) => this.onKey(e));
    for (const [id, end] of [["set-start", "start"], ["set-end", "end"]]) {
      this.el(id).addEventListener("click", () => this.walk.setEnd(end, this.nearestRow(...this.marker)));
    }
  }

  pointerLatent(event) {
    const map = this.el("map");
    const box = map.getBoundingClientRect();
    const x = (event.clientX - box.left - map.clientLeft) * (map.width / map.clientWidth);
    const y = (event.clientY - box.top - map.clientTop) * (map.height / map.clientHeight);
    return this.view.toLatent(x, y);
  }

  onPointer(event) {
    const [u, v] = this.pointerLatent(event);
    const row = this.nearestRow(u, v);
    const [x, y] = this.view.toCanvas(...this.mapPoint(row));
    const [px, py] = this.view.toCanvas(u, v);
    this.hover = Math.hypot(x - px, y - py) <= HOVER_PX ? row : -1;
    this.showUnder();
    if (this.dragging) this.pinAt(u, v);
    else this.moveTo(u, v);
  }

  onKey(event) {
    if (event.key === "s" || event.key === "e") {
      this.walk.setEnd(event.key === "s" ? "start" : "end", this.nearestRow(...this.marker));
      return;
    }
    const step = KEY_STEP * this.view.extent * (event.shiftKey ? 5 : 1);
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    this.pinAt(this.pin[0] + move[0], this.pin[1] + move[1]);
  }

  selectModel(id) {
    this.current = id;
    this.el("model").value = id;
    const m = this.model;
    this.el("label").disabled = !m.uses_labels;
    this.view = mapView(m.points, this.el("map"), [[0, 0]]);
    this.el("map-note").textContent = this.mapNote(m);
    this.pinAt(...this.view.centre); // a new map starts with the marker in its middle
    this.walk.update();
  }

  mapNote(m) {
    const centre = ` The codes' centre lies ${m.centreDistance.toPrecision(3)} from the origin.`;
    if (m.latent === 2) {
      return "The map is the latent space itself: each dot is a test image's code (its mean)."
        + (m.uses_labels ? ` The ${m.kind.toUpperCase()}'s codes were taken with each image's true label.` : "")
        + centre;
    }
    const share = m.pca.variance_share;
    return `The map shows the ${m.latent}-D codes along their two principal axes, which hold `
      + `${(100 * (share[0] + share[1])).toFixed(0)}% of their variance. The marker decodes the `
      + "point of that plane, which need not be where any code lies; the origin drawn is the "
      + `plane's point nearest the latent origin.${centre}`;
  }

  axisTitles(m) {
    if (m.latent === 2) return ["z₁", "z₂"];
    const share = m.pca.variance_share.map((s) => `${(100 * s).toFixed(0)}%`);
    return [`principal axis 1 (${share[0]})`, `principal axis 2 (${share[1]})`];
  }

  pinAt(u, v) {
    this.pin = [u, v];
    this.moveTo(u, v);
  }

  moveTo(u, v) {
    this.marker = [u, v];
    this.redrawPoint();
  }

  redraw() {
    this.redrawPoint();
    this.walk.update();
  }

  redrawPoint() {
    const m = this.model;
    this.z = this.backMap(m.id, this.marker[0], this.marker[1]);
    this.decoded = this.decode(m.id, this.z, this.label);
    drawDigit(this.el("decoded"), this.decoded);
    const p = this.classify(this.decoded);
    const reading = argmax(p);
    const at = this.z.length <= 4 ? `z = (${this.z.map((v) => v.toFixed(2)).join(", ")})`
      : `map point (${this.marker.map((v) => v.toFixed(2)).join(", ")})`;
    let own = "";
    if (m.q_y) {
      const q = classifyWith(m.q_y, this.decoded);
      const read = argmax(q);
      const given = this.label >= 0 ? `given label ${this.label}`
        : "decoded with the label q(y|x) reads in it";
      own = ` M2 (${given}): its own q(y|x) reads a ${read} (q = ${q[read].toFixed(2)}).`;
    }
    this.el("point-info").textContent =
      `${at}: the classifier reads a ${reading} (p = ${p[reading].toFixed(2)}).${own}`;
    this.el("nearest").textContent = `The test image nearest the marker: ${this.describe(this.nearestRow(...this.marker))}`;
    this.drawMap();
  }

  showUnder() {
    const row = this.hover;
    if (row < 0) {
      clearDigit(this.el("under"));
      this.el("under-caption").textContent = "Move the pointer onto a dot to see its test image here.";
      return;
    }
    drawDigit(this.el("under"), this.testImage(row));
    this.el("under-caption").textContent = `Under the pointer: test image ${this.describe(row)}.`;
  }

  drawMap() {
    const canvas = this.el("map");
    const ctx = canvas.getContext("2d");
    const m = this.model;
    const view = this.view;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    drawAxes(ctx, view, this.axisTitles(m));
    drawDots(ctx, view, m.points, this.labels);
    drawOrigin(ctx, view);
    const walk = this.walk;
    drawWalk(ctx, view, this.mapPoint(walk.start), this.mapPoint(walk.end), walk.steps, walk.frame);
    if (this.hover >= 0) drawHover(ctx, view, ...this.mapPoint(this.hover));
    drawMarker(ctx, view, ...this.marker);
  }

  // The row of the test image whose dot lies nearest map point (u, v).
  nearestRow(u, v) {
    const p = this.model.points;
    let best = 0;
    let bestD = Infinity;
    for (let i = 0; i < this.labels.length; i++) {
      const d = (p[2 * i] - u) ** 2 + (p[2 * i + 1] - v) ** 2;
      if (d < bestD) { best = i; bestD = d; }
    }
    return best;
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
