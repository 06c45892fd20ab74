"use strict";
// The latent explorer's networks: the packed tensors back into float32, and the study's
// decoders and classifiers run in float64 on them. No network, no framework.

const SIDE = 28; // MNIST images are SIDE x SIDE
const PIXELS = SIDE * SIDE;

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

// ---- digits ----------------------------------------------------------------------------

// An image of pixel values in [0, 1] (28 x 28), scaled up without smoothing onto `canvas`.
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

// An empty image: where there is nothing to show.
function clearDigit(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#eee";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}
