// edgeface in the browser, written only from the model card: decode a photo, find faces with MediaPipe Tasks'
// FaceDetector, cut each face by the card's crop contract, resize by the card's kernel, feed raw pixels to the
// app-form model in one of three runtimes (config.runtimes: onnxruntime-web for .onnx; LiteRT.js or tfjs-tflite
// for .tflite),
// read the outputs by the card's names and decode them by the card's rules.
import { squareResize, rgbaToRgb, contractCrop } from "./resize.js";

const NM = "node_modules/";
let liteRtLoaded = null;

export async function loadConfig() {
  const config = await (await fetch("config.json")).json();
  config.card = await (await fetch(config.card_file)).json();
  return config;
}

// ---- decoding ---------------------------------------------------------------------------------------------
// The browser's own decoder (Chromium: libjpeg-turbo, accurate IDCT), full size, no colour conversion, no scaling.
export async function decode(blob) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height, { colorSpace: "srgb" }).data;
  return { rgb: rgbaToRgb(data), h: bitmap.height, w: bitmap.width, bitmap };
}

// The shortcut the card warns against: the canvas's own scaler instead of the card's kernel (for measuring it).
export function canvasResize(bitmap, size) {
  const side = Math.min(bitmap.width, bitmap.height);
  const canvas = new OffscreenCanvas(size, size);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, (bitmap.width - side) / 2 | 0, (bitmap.height - side) / 2 | 0, side, side, 0, 0, size, size);
  return rgbaToRgb(ctx.getImageData(0, 0, size, size).data);
}

export async function sha256(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- models -------------------------------------------------------------------------------------------------
export async function loadModel(config, runtime) {
  const card = config.card, url = config.model_file;
  const size = card.input.shape[1];
  const names = card.outputs.map((o) => o.name);
  if (card.input.encoding !== "raw_pixels") throw new Error(`${url}: not an app-form artifact (input.encoding)`);
  let run, backend;
  if (runtime === "onnxruntime-web") {
    const ort = await import(`./${NM}onnxruntime-web/dist/ort.wasm.min.mjs`);
    ort.env.wasm.wasmPaths = new URL(`${NM}onnxruntime-web/dist/`, location.href).href;
    ort.env.wasm.numThreads = 1;
    const session = await ort.InferenceSession.create(url, { executionProviders: ["wasm"] });
    backend = "onnxruntime-web wasm";
    run = async (pixels) => {
      const out = await session.run({ [card.input.name]: new ort.Tensor("uint8", pixels, card.input.shape) });
      return Object.fromEntries(names.map((n) => [n, Array.from(out[n].data)]));
    };
  } else if (runtime === "litert.js") {
    const litert = await import(`./${NM}@litertjs/core/dist/index.js`);
    liteRtLoaded ??= litert.loadLiteRt(`${NM}@litertjs/core/wasm/`);  // once per page
    await liteRtLoaded;
    const model = await litert.loadAndCompile(url, { accelerator: "wasm" });
    backend = "LiteRT.js wasm (XNNPACK)";
    run = async (pixels) => {
      const input = new litert.Tensor(pixels, card.input.shape);
      const out = await model.run({ [card.input.name]: input });
      input.delete();
      const result = {};
      for (const n of names) {
        const t = await out[n].moveTo("wasm");
        result[n] = Array.from(t.toTypedArray());
        t.delete();
      }
      return result;
    };
  } else if (runtime === "tfjs-tflite") {
    for (const file of ["@tensorflow/tfjs-core/dist/tf-core.min.js", "@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.min.js",
                        "@tensorflow/tfjs-tflite/dist/tf-tflite.min.js"]) await loadScript(NM + file);
    window.tflite.setWasmPath(new URL(`${NM}@tensorflow/tfjs-tflite/wasm/`, location.href).href);
    await window.tf.setBackend("cpu");
    await window.tf.ready();
    const model = await window.tflite.loadTFLiteModel(url, { numThreads: 1 });
    backend = `tfjs-tflite ${window.tf.getBackend()} backend, TFLite wasm`;
    run = async (pixels) => {
      const input = window.tf.tensor(Int32Array.from(pixels), card.input.shape, "int32");
      const out = model.predict(input);
      input.dispose();
      const result = {};
      for (const n of names) { result[n] = Array.from(await out[n].data()); out[n].dispose(); }
      return result;
    };
  } else {
    throw new Error(`unknown runtime ${runtime}`);
  }
  return { run, backend, size, runtime, decodeOutputs: (raw) => decodeOutputs(card, raw) };
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    if (document.querySelector(`script[src="${src}"]`)) return resolve();
    const s = document.createElement("script");
    s.src = src; s.onload = resolve; s.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.appendChild(s);
  });
}

// The card's decoding rules (runtime/decode.py's, from their card descriptions), and its age-group rule.
export function decodeOutputs(card, raw) {
  const answer = {};
  for (const out of card.outputs) {
    const v = raw[out.name], rule = out.decoding;
    let value;
    if (rule.rule === "probability" || rule.rule === "value") value = v[0];
    else if (rule.rule === "expectation") {
      let s = 0, t = 0;
      v.forEach((p, k) => { s += p * ((rule.first_value || 0) + k); t += p; });
      value = s / Math.max(t, 1e-6);
    } else if (rule.rule === "argmax") value = v.indexOf(Math.max(...v));
    else if (rule.rule === "count_above") value = v.filter((p) => p > rule.threshold).length;
    if (out.name === "gender") {
      answer.prob_male = value;
      answer.gender = value >= rule.threshold ? rule.positive : card.labels.gender.find((g) => g !== rule.positive);
    } else if (rule.unit === "age_group") {
      answer.age_group = card.labels.age_groups[value];
    } else {
      answer.age_years = value;
      const edges = card.labels.age_group_rule.upper_edges;
      answer.age_group = card.labels.age_groups[edges.filter((e) => e < value).length];
    }
  }
  return answer;
}

// ---- faces ------------------------------------------------------------------------------------------------
export async function loadDetector(config) {
  const vision = await import(`./${NM}@mediapipe/tasks-vision/vision_bundle.mjs`);
  const fileset = await vision.FilesetResolver.forVisionTasks(`${NM}@mediapipe/tasks-vision/wasm`);
  const options = config.card.input.crop.detectors[config.detector].detector_model.options;
  const detector = await vision.FaceDetector.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: config.detector_file, delegate: "CPU" }, runningMode: "IMAGE",
    minDetectionConfidence: options.min_detection_confidence, minSuppressionThreshold: options.min_suppression_threshold,
  });
  return detector;
}

// Every face of a decoded photo: box, score, the contract's crop, and the model's answers.
export async function predictFaces(config, model, detector, image) {
  const contract = config.card.input.crop.detectors[config.detector];
  const found = detector.detect(image.bitmap).detections;
  const faces = [];
  for (const d of found) {
    const b = d.boundingBox, kp = d.keypoints.map((k) => [k.x * image.w, k.y * image.h]);
    const box = [b.originX, b.originY, b.width, b.height];
    const crop = contractCrop(image.rgb, image.h, image.w, contract, box, kp);
    const pixels = squareResize(crop.pixels, crop.side, crop.side, model.size);
    const raw = await model.run(pixels);
    faces.push({ box, score: d.categories[0].score, keypoints: kp.slice(0, 2), raw, ...model.decodeOutputs(raw) });
  }
  return faces;
}

// A face chip (already cropped like the training chips): decode, resize by the card, run.
export async function predictChip(model, blob) {
  const image = await decode(blob);
  const pixels = squareResize(image.rgb, image.h, image.w, model.size);
  const t0 = performance.now();
  const raw = await model.run(pixels);
  const ms = performance.now() - t0;
  return { decoded_sha256: await sha256(image.rgb), input_sha256: await sha256(pixels), raw, ms,
           ...model.decodeOutputs(raw), image };
}
