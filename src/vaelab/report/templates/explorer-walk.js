// The walk between two test images: its ends (set by their own controls), its frames decoded
// by the page's current model and label, a strip of every frame with the classifier's reading,
// and play / pause. The page (explorer.js) draws it on the map.

const PLAY_MS = 150; // milliseconds per frame when the walk plays

class Walk {
  constructor(page, start, end) {
    this.page = page;
    this.steps = page.data.walk_steps;
    this.start = start; // rows of the page's test images
    this.end = end;
    this.frame = 0;
    this.frames = []; // each frame's decoded pixels
    this.readings = []; // what the classifier reads in each
    this.decoded = null; // the current frame's pixels
    this.timer = null;
  }

  el(id) { return document.getElementById(id); }

  build() {
    for (const id of ["walk-start", "walk-end"]) this.el(id).max = this.page.data.test_images - 1;
    this.el("walk-frame-slider").max = this.steps - 1;
    this.el("walk-strip").replaceChildren(...Array.from({ length: this.steps }, (_, f) => {
      const item = document.createElement("li");
      const canvas = document.createElement("canvas");
      canvas.width = SIDE;
      canvas.height = SIDE;
      item.append(canvas, document.createElement("span"));
      item.title = `frame ${f + 1}`;
      item.addEventListener("click", () => { this.stop(); this.show(f); });
      return item;
    }));
    for (const [id, end] of [["walk-start", "start"], ["walk-end", "end"]]) {
      this.el(id).addEventListener("change", (e) => this.typeEnd(end, e.target));
    }
    this.el("walk-frame-slider").addEventListener("input", (e) => this.show(Number(e.target.value)));
    this.el("play").addEventListener("click", () => (this.timer ? this.stop() : this.play()));
  }

  setEnd(end, row) {
    this[end] = row;
    this.el("walk-message").textContent = "";
    this.update();
  }

  // A number typed: the test image of that number, if the page holds it.
  typeEnd(end, input) {
    const page = this.page;
    const row = page.rowOf.get(Number(input.value));
    if (row === undefined) {
      this.el("walk-message").textContent = `test image #${input.value} is not among the `
        + `${page.labels.length} on the map; pick a dot, or a number shown on it`;
      input.value = page.index[this[end]];
      return;
    }
    this.setEnd(end, row);
  }

  // Frame `frame`'s latent point: (1 - t) a + t b, t evenly spaced in [0, 1], ends included.
  point(frame) {
    const page = this.page;
    const a = page.code(page.current, this.start);
    const b = page.code(page.current, this.end);
    const t = frame / (this.steps - 1);
    return a.map((ak, k) => (1 - t) * ak + t * b[k]);
  }

  // Decode and read every frame again: after a change of ends, model or label.
  update() {
    const page = this.page;
    const [start, end] = [page.index[this.start], page.index[this.end]];
    this.el("walk-start").value = start;
    this.el("walk-end").value = end;
    const shown = page.data.walks.some(([a, b]) => a === start && b === end);
    this.el("walk-source").textContent = shown ? "(one the report shows)" : "";
    this.frames = Array.from({ length: this.steps }, (_, f) => page.decode(page.current, this.point(f), page.label));
    this.readings = this.frames.map((pixels) => argmax(page.classify(pixels)));
    [...this.el("walk-strip").children].forEach((item, f) => {
      drawDigit(item.firstChild, this.frames[f]);
      item.lastChild.textContent = String(this.readings[f]);
    });
    for (const [id, row] of [["walk-a", this.start], ["walk-b", this.end]]) {
      drawDigit(this.el(id), page.testImage(row));
      this.el(`${id}-caption`).textContent = page.describe(row);
    }
    this.show(Math.min(this.frame, this.steps - 1));
  }

  show(frame) {
    this.frame = frame;
    this.el("walk-frame-slider").value = frame;
    this.decoded = this.frames[frame];
    drawDigit(this.el("walk-frame"), this.decoded);
    const probabilities = this.page.classify(this.decoded);
    const reading = argmax(probabilities);
    this.el("walk-frame-number").textContent = `${frame + 1} of ${this.steps}`;
    this.el("walk-reading").textContent =
      `frame ${frame + 1}: the classifier reads ${reading} (p = ${probabilities[reading].toFixed(2)})`;
    [...this.el("walk-strip").children].forEach((s, i) => s.classList.toggle("current", i === frame));
    this.page.drawMap();
  }

  play() {
    const button = this.el("play");
    button.textContent = "❚❚ Pause";
    button.setAttribute("aria-pressed", "true");
    this.timer = setInterval(() => this.show((this.frame + 1) % this.steps), PLAY_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    const button = this.el("play");
    button.textContent = "▶ Play";
    button.setAttribute("aria-pressed", "false");
  }
}
