// Reads an edge-echo NAME.reference.npz (a zip of .npy arrays, deflated) in the browser: the
// stored Keras inputs and outputs. Only what numpy's savez_compressed writes is handled.
export async function readNpz(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The end of central directory record: its signature, searched from the end.
  let end = bytes.length - 22;
  while (end >= 0 && view.getUint32(end, true) !== 0x06054b50) end--;
  if (end < 0) throw new Error("not a zip file");
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const arrays = {};
  for (let i = 0; i < count; i++) {
    const method = view.getUint16(at + 10, true);
    const size = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    const extra = view.getUint16(at + 30, true);
    const comment = view.getUint16(at + 32, true);
    const local = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extra + comment;
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    let data = bytes.subarray(start, start + size);
    if (method === 8) {
      const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
      data = new Uint8Array(await new Response(stream).arrayBuffer());
    } else if (method !== 0) {
      throw new Error(`${name}: zip method ${method}`);
    }
    arrays[name.replace(/\.npy$/, "")] = readNpy(data);
  }
  return arrays;
}

function readNpy(data) {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const major = data[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const offset = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(data.subarray(offset, offset + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(",").filter((s) => s.trim()).map(Number);
  const kinds = {"<f4": Float32Array, "<i4": Int32Array, "<f8": Float64Array};
  if (!kinds[descr] || /'fortran_order':\s*True/.test(header)) throw new Error(`npy ${descr} not read here`);
  const body = data.slice(offset + headerLength);
  return {shape, data: new kinds[descr](body.buffer)};
}
