// The model card's crop and resize, byte for byte as edgeface/data/images.py computes them (tests/test_webapp.py
// holds the two equal): centre square crop, then TensorFlow's antialiased bilinear resize (scale_and_translate,
// triangle kernel widened by the downscale factor), every step in float32 (Math.fround), rows then columns,
// rounded half to even. Do not replace this with canvas drawImage: another kernel, other answers.
const f = Math.fround;

function spans(nIn, nOut) {
  const invScale = f(1.0 / f(f(nOut) / f(nIn)));
  const kernelScale = invScale > 1 ? invScale : f(1);
  const oneOver = f(1 / kernelScale);
  const span = Math.min(2 * Math.ceil(kernelScale) + 1, nIn);
  const starts = new Int32Array(nOut);
  const weights = new Float32Array(nOut * span);
  for (let x = 0; x < nOut; x++) {
    const sample = f(f(x + 0.5) * invScale);
    const start = Math.min(Math.max(Math.ceil(f(f(sample - kernelScale) - 0.5)), 0), nIn - 1);
    const end = Math.min(Math.max(Math.floor(f(f(sample + kernelScale) - 0.5)), 0), nIn - 1) + 1;
    const k = [];
    let total = f(0);
    for (let s = start; s < end; s++) {
      const w = Math.max(0, f(1 - f(Math.abs(f(f(s + 0.5) - sample)) * oneOver)));
      k.push(w);
      total = f(total + w);
    }
    if (total > 0) {
      starts[x] = Math.min(start, nIn - span);
      const inv = f(1 / total);
      for (let i = 0; i < k.length; i++) weights[x * span + start - starts[x] + i] = f(k[i] * inv);
    }
  }
  return { starts, weights, span };
}

// Resamples one axis of a float32 (h, w, 3) image: axis 0 -> (nOut, w, 3), axis 1 -> (h, nOut, 3).
function gather(src, h, w, axis, nOut) {
  const { starts, weights, span } = spans(axis === 0 ? h : w, nOut);
  const oh = axis === 0 ? nOut : h, ow = axis === 0 ? w : nOut;
  const out = new Float32Array(oh * ow * 3);
  for (let k = 0; k < span; k++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const o = axis === 0 ? y : x;
        const weight = weights[o * span + k];
        const sy = axis === 0 ? starts[o] + k : y, sx = axis === 0 ? x : starts[o] + k;
        const si = (sy * w + sx) * 3, oi = (y * ow + x) * 3;
        for (let c = 0; c < 3; c++) out[oi + c] = f(out[oi + c] + f(weight * src[si + c]));
      }
    }
  }
  return out;
}

function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

// rgb: Uint8Array/Uint8ClampedArray of h x w x 3 -> Uint8Array size x size x 3 (the model's raw pixel input).
export function squareResize(rgb, h, w, size) {
  const side = Math.min(h, w), top = Math.floor((h - side) / 2), left = Math.floor((w - side) / 2);
  const square = new Float32Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side * 3; x++) square[y * side * 3 + x] = rgb[((top + y) * w + left) * 3 + x];
  }
  const out = gather(gather(square, side, side, 0, size), size, side, 1, size);
  const pixels = new Uint8Array(out.length);
  for (let i = 0; i < out.length; i++) pixels[i] = Math.min(255, Math.max(0, roundHalfEven(out[i])));
  return pixels;
}

// RGBA (ImageData.data) -> RGB bytes.
export function rgbaToRgb(rgba) {
  const rgb = new Uint8Array((rgba.length / 4) * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i]; rgb[j + 1] = rgba[i + 1]; rgb[j + 2] = rgba[i + 2];
  }
  return rgb;
}

// The crop contract (card input.crop.detectors[name]) on a detection in photo pixels: the side x side square
// around the anchor plus offset, turned by the eye angle, bilinear, edges replicated, sampled n x n (n = side).
export function contractCrop(rgb, h, w, contract, box, keypoints) {
  const [bx, by, bw, bh] = box;
  let theta = 0, ax = bx + bw / 2, ay = by + bh / 2;
  if (contract.anchor === "eye_midpoint") {
    const [re, le] = keypoints;
    if (contract.rotate_to_level_eyes) theta = Math.atan2(le[1] - re[1], le[0] - re[0]);
    ax = (re[0] + le[0]) / 2; ay = (re[1] + le[1]) / 2;
  }
  const cos = Math.cos(theta), sin = Math.sin(theta);
  const dx = contract.offset[0] * bw, dy = contract.offset[1] * bw;
  const cx = ax + cos * dx - sin * dy, cy = ay + sin * dx + cos * dy;
  const side = contract.scale * bw;
  const n = Math.max(1, Math.round(side));
  const k = side / n;
  const out = new Uint8Array(n * n * 3);
  for (let v = 0; v < n; v++) {
    for (let u = 0; u < n; u++) {
      const ou = (u + 0.5 - n / 2) * k, ov = (v + 0.5 - n / 2) * k;
      const sx = Math.min(Math.max(cx + cos * ou - sin * ov - 0.5, 0), w - 1);
      const sy = Math.min(Math.max(cy + sin * ou + cos * ov - 0.5, 0), h - 1);
      const x0 = Math.floor(sx), y0 = Math.floor(sy), x1 = Math.min(x0 + 1, w - 1), y1 = Math.min(y0 + 1, h - 1);
      const fx = sx - x0, fy = sy - y0;
      for (let c = 0; c < 3; c++) {
        const a = rgb[(y0 * w + x0) * 3 + c], b = rgb[(y0 * w + x1) * 3 + c];
        const d = rgb[(y1 * w + x0) * 3 + c], e = rgb[(y1 * w + x1) * 3 + c];
        out[(v * n + u) * 3 + c] = Math.round((a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy);
      }
    }
  }
  return { pixels: out, side: n };
}
