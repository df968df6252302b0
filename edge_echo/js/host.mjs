// edge-echo's host for the JavaScript runtimes: the same code in Node (node.mjs drives it over
// stdio) and in headless Chromium (page.html, driven by Playwright). It opens a model file in
// an engine, runs it on inputs, and times the engine's bare call on a prepared feed, as an app
// makes it: ONNX Runtime's `session.run(feeds)` and LiteRT.js's `model.run(tensors)`.
//
// Arrays cross the boundary as {dtype, shape, data}: data is the base64 of the little-endian
// bytes, so float32 values arrive bit for bit.

const TYPED = {
  float32: Float32Array, int32: Int32Array, int64: BigInt64Array, int8: Int8Array,
  uint8: Uint8Array, float64: Float64Array, bool: Uint8Array,
};

function fromBase64(text) {
  if (typeof Buffer !== "undefined") return new Uint8Array(Buffer.from(text, "base64"));
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function toBase64(bytes) {
  if (typeof Buffer !== "undefined") return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  if (bytes.toBase64) return bytes.toBase64();
  let raw = "";
  for (let i = 0; i < bytes.length; i += 0x8000) raw += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(raw);
}

function typed(array) {
  const kind = TYPED[array.dtype];
  if (!kind) throw new Error(`no typed array for ${array.dtype}`);
  const bytes = fromBase64(array.data);
  return new kind(bytes.buffer, bytes.byteOffset, bytes.byteLength / kind.BYTES_PER_ELEMENT);
}

function packed(dtype, shape, data) {
  return {dtype, shape: Array.from(shape, Number), data: toBase64(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))};
}

// ONNX Runtime (onnxruntime-node or onnxruntime-web: the same API).
function onnxEngine(ort, provider) {
  const dtypeOf = (type) => String(type).replace(/^tensor\((.*)\)$/, "$1").replace(/^float$/, "float32");
  return {
    async open(bytes, options) {
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: [provider], intraOpNumThreads: 1, interOpNumThreads: 1,
        executionMode: "sequential", logSeverityLevel: 4, extra: options.extra || {},
      });
      const meta = (names, metadata) => names.map((name, i) => {
        const m = (metadata || [])[i] || {};
        return {name, dtype: m.type ? dtypeOf(m.type) : "float32",
                shape: (m.shape || []).map((d) => (typeof d === "number" ? d : -1))};
      });
      const inputs = meta(session.inputNames, session.inputMetadata);
      const outputs = meta(session.outputNames, session.outputMetadata);
      return {
        inputs, outputs,
        feed(arrays) {
          const feeds = {};
          arrays.forEach((a, i) => { feeds[inputs[i].name] = new ort.Tensor(a.dtype, a.data, a.shape); });
          return feeds;
        },
        call: (feeds) => session.run(feeds),
        async read(result) {
          return outputs.map((o) => {
            const t = result[o.name];
            return {dtype: t.type === "float" ? "float32" : t.type, shape: Array.from(t.dims, Number), data: t.data};
          });
        },
        release() { return session.release(); },
      };
    },
  };
}

// LiteRT.js (@litertjs/core) on its WebAssembly CPU backend (XNNPack).
function litertEngine(litert) {
  return {
    async open(bytes) {
      const model = await litert.loadAndCompile(bytes, {accelerator: "wasm", cpuOptions: {numThreads: 1}});
      const meta = (details) => details.map((d) => ({name: d.name, dtype: d.dtype, shape: Array.from(d.shape)}));
      const inputs = meta(model.getInputDetails());
      const outputs = meta(model.getOutputDetails());
      return {
        inputs, outputs,
        feed(arrays) {
          return arrays.map((a) => new litert.Tensor(a.data, a.shape));
        },
        call: (tensors) => model.run(tensors),
        async read(result) {
          const out = result.map((t) => ({
            dtype: t.type.dtype, shape: Array.from(t.type.layout.dimensions, Number), data: t.toTypedArray().slice(),
          }));
          result.forEach((t) => t.delete());
          return out;
        },
        release() { model.delete(); },
      };
    },
  };
}

// The clock: Node's is nanoseconds; a browser's performance.now() is coarsened (5 µs when
// cross-origin isolated), so there each sample times a group of calls spanning >= 100 ticks.
function clock() {
  if (typeof process !== "undefined" && process.hrtime) {
    return {now: () => Number(process.hrtime.bigint()) / 1e3, tick: 0.001};
  }
  const now = () => performance.now() * 1e3;
  let tick = Infinity;
  for (let i = 0; i < 50; i++) {
    const a = now();
    let b = now();
    while (b === a) b = now();
    tick = Math.min(tick, b - a);
  }
  return {now, tick};
}

// LiteRT.js's tensors live in WebAssembly memory and are freed by hand; ORT's feeds are an
// object of tensors the garbage collector frees.
function free(tensors) {
  if (Array.isArray(tensors)) tensors.forEach((t) => t.delete && t.delete());
}

async function runOnce(s, inputs) {
  const feed = s.feed(inputs);
  try {
    return await s.read(await s.call(feed));
  } finally {
    free(feed);
  }
}

export function makeHost(engines) {
  const open = new Map();
  let next = 1;
  const time = clock();
  const get = (id) => {
    const s = open.get(id);
    if (!s) throw new Error(`no open session ${id}`);
    return s;
  };
  return {
    async open(engine, data, options = {}) {
      if (!engines[engine]) throw new Error(`engine ${engine} is not loaded here (${Object.keys(engines).join(", ")})`);
      const session = await engines[engine].open(fromBase64(data), options);
      const id = next++;
      open.set(id, session);
      return {id, inputs: session.inputs, outputs: session.outputs};
    },
    // Outputs for a batch; a file with a fixed batch of 1 runs it one sequence at a time here,
    // as an app would, rather than one request per sequence.
    async run(id, arrays) {
      const s = get(id);
      const inputs = arrays.map((a) => ({dtype: a.dtype, shape: a.shape, data: typed(a)}));
      const fixed = s.inputs[0].shape[0];
      const n = inputs[0].shape[0];
      if (!(fixed === 1 && n !== 1)) {
        return (await runOnce(s, inputs)).map((o) => packed(o.dtype, o.shape, o.data));
      }
      const parts = [];
      for (let i = 0; i < n; i++) {
        parts.push(await runOnce(s, inputs.map((a) => {
          const per = a.data.length / n;
          return {dtype: a.dtype, shape: [1, ...a.shape.slice(1)], data: a.data.subarray(i * per, (i + 1) * per)};
        })));
      }
      return parts[0].map((first, k) => {
        const whole = new first.data.constructor(first.data.length * n);
        parts.forEach((p, i) => whole.set(p[k].data, i * first.data.length));
        return packed(first.dtype, [n, ...first.shape.slice(1)], whole);
      });
    },
    async runs(id, batches) {
      const outs = [];
      for (const arrays of batches) outs.push(await this.run(id, arrays));
      return outs;
    },
    // The bare call on a feed prepared once: the first call, a warm-up, then `runs` samples
    // (microseconds per call; each sample one call, or a group where the clock is coarse).
    async time(id, arrays, runs, warmup) {
      const s = get(id);
      const feed = s.feed(arrays.map((a) => ({dtype: a.dtype, shape: a.shape, data: typed(a)})));
      try {
        let start = time.now();
        free(await s.call(feed));
        const first = time.now() - start;
        let spent = 0;
        for (let i = 0; i < Math.max(warmup, 1); i++) {
          start = time.now();
          free(await s.call(feed));
          spent += time.now() - start;
        }
        const per = spent / Math.max(warmup, 1);
        const group = time.tick <= 0.01 ? 1 : Math.max(1, Math.ceil((100 * time.tick) / Math.max(per, 1e-3)));
        const samples = [];
        for (let i = 0; i < runs; i++) {
          start = time.now();
          for (let k = 0; k < group; k++) free(await s.call(feed));
          samples.push((time.now() - start) / group);
        }
        return {first_us: first, samples_us: samples};
      } finally {
        free(feed);
      }
    },
    async close(id) {
      const s = open.get(id);
      open.delete(id);
      if (s) await s.release();
      return true;
    },
  };
}

export {litertEngine, onnxEngine};
