// edge-echo's web example (index.html). Everything comes from this server: the export in
// ../../exported/ (manifest.json, NAME.onnx, NAME.reference.npz, NAME.wasm and NAME.mjs) and
// ONNX Runtime Web from ../../node_modules/ (make js). Nothing is fetched from elsewhere.
import * as ort from "../../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import {readNpz} from "./npz.mjs";

const EXPORT = new URL("../../exported/", import.meta.url);
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = new URL("../../node_modules/onnxruntime-web/dist/", import.meta.url).href;

const $ = (id) => document.getElementById(id);
const show = (values) => Array.from(values, (v) => v.toFixed(1)).join(" ");
const fetchBytes = async (name) => {
  const answer = await fetch(new URL(name, EXPORT));
  if (!answer.ok) throw new Error(`${name}: ${answer.status} ${answer.statusText}`);
  return new Uint8Array(await answer.arrayBuffer());
};

const manifest = JSON.parse(new TextDecoder().decode(await fetchBytes("manifest.json")));
const models = Object.entries(manifest.models).filter(([, e]) => e.artifacts.onnx);
for (const [name] of models) $("model").add(new Option(name, name));
$("model").value = models.some(([n]) => n === "many-to-many") ? "many-to-many" : models[0][0];
const loaded = {};

async function open(name) {
  if (loaded[name]) return loaded[name];
  const entry = manifest.models[name];
  const reference = await readNpz(await fetchBytes(entry.artifacts.reference.file));
  const session = await ort.InferenceSession.create(await fetchBytes(entry.artifacts.onnx.file),
                                                    {executionProviders: ["wasm"]});
  let wasm = null;
  if (entry.artifacts.wasm && entry.artifacts.wasm_loader) {
    const loader = await import(new URL(entry.artifacts.wasm_loader.file, EXPORT).href);
    wasm = await loader.load(new URL(entry.artifacts.wasm.file, EXPORT));
  }
  loaded[name] = {entry, reference, session, wasm};
  return loaded[name];
}

function feedShape(entry, count) {
  // [batch, steps, features]: one sequence of the model's steps, or (a one-step model) one
  // sequence per value, as the export's seed input is fed.
  const [, steps, features] = entry.inputs[0].shape;
  if (steps && steps * features === count) return [1, steps, features];
  if (steps === 1 && features === 1) return [count, 1, 1];
  throw new Error(`${entry.inputs[0].name} takes ${steps ?? "any number of"} steps of ${features} value(s); got ${count} values`);
}

function row(runtime, file, values, keras) {
  const tr = document.createElement("tr");
  let diff = "—";
  if (keras && values) {
    const worst = Math.max(...Array.from(values, (v, i) => Math.abs(v - keras[i])));
    diff = worst.toExponential(1);
  }
  for (const [text, cls] of [[runtime], [file], [values ? show(values) : "—", "out"], [diff, "diff"]]) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    if (cls === "out" && values) td.title = Array.from(values).join(", ");
    tr.append(td);
  }
  tr.dataset.runtime = runtime;
  return tr;
}

async function run(event) {
  event?.preventDefault();
  $("error").textContent = "";
  const name = $("model").value;
  try {
    $("status").textContent = `running ${name}…`;
    const {entry, reference, session, wasm} = await open(name);
    const values = Float32Array.from($("sequence").value.split(/[\s,]+/).filter(Boolean).map(Number));
    if (!values.length || values.some(Number.isNaN)) throw new Error("type numbers, separated by spaces or commas");
    const shape = feedShape(entry, values.length);
    const seed = reference.seed_x && reference.seed_x.data;
    const isSeed = seed && seed.length === values.length && seed.every((v, i) => v === values[i]);
    const keras = isSeed ? reference.seed_y.data : null;
    const feeds = {[session.inputNames[0]]: new ort.Tensor("float32", values, shape)};
    const onnx = (await session.run(feeds))[session.outputNames[0]].data;
    const rows = [row("Keras (stored in the export)", entry.artifacts.reference.file, keras, null)];
    if (!keras) rows[0].children[2].textContent = "not stored for this input (the echo's target is the input)";
    rows.push(row("ONNX Runtime Web (WebAssembly)", entry.artifacts.onnx.file, onnx, keras));
    if (wasm) {
      const per = shape[1] * shape[2];
      const out = [];
      for (let b = 0; b < shape[0]; b++) out.push(...wasm.predict(values.subarray(b * per, (b + 1) * per)));
      rows.push(row("C source as WebAssembly", `${entry.artifacts.wasm.file} + ${entry.artifacts.wasm_loader.file}`,
                    Float32Array.from(out), keras));
    }
    $("results").replaceChildren(...rows);
    $("status").textContent = `${name}: ${show(values)} in, ${rows.length - 1} runtime(s) ran it`;
    document.body.dataset.state = "done";
  } catch (error) {
    $("error").textContent = String(error.message || error);
    $("status").textContent = "";
    document.body.dataset.state = "error";
  }
}

async function pickModel() {
  const {reference} = await open($("model").value);
  $("sequence").value = reference.seed_x
    ? Array.from(reference.seed_x.data, (v) => +v.toPrecision(7)).join(" ") : "";
  await run();
}

$("form").addEventListener("submit", run);
$("model").addEventListener("change", pickModel);
await pickModel();
