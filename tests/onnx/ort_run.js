// Runs an ONNX model with ONNX Runtime (npm onnxruntime-node, CPU) on the
// tensor "x" of a safetensors file and writes the output as "y" of another:
//   node tests/onnx/ort_run.js model.onnx in.safetensors out.safetensors [float|int64[,...]]
// One input: the tensor "x"; several: "x1", "x2", ... in the model's input
// order, each of the listed type (int64: 0-based indices stored as floats).
// The output is the model's first.
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = {};
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = e.data_offsets;
    const bytes = buf.subarray(8 + n + a, 8 + n + b);
    out[name] = { dims: e.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)) };
  }
  return out;
}

function writeSafetensors(file, name, dims, data) {
  let h = JSON.stringify({ [name]: { dtype: 'F32', shape: dims, data_offsets: [0, data.length * 4] } });
  while ((8 + h.length) % 8) h += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(h), Buffer.from(data.buffer, data.byteOffset, data.length * 4)]));
}

(async () => {
  const [model, input, output, types] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model);
  const xs = readSafetensors(input);
  const kinds = (types || 'float').split(',');
  const feeds = {};
  session.inputNames.forEach((name, i) => {
    const x = session.inputNames.length === 1 ? xs.x : xs['x' + (i + 1)];
    feeds[name] = kinds[i] === 'int64'
      ? new ort.Tensor('int64', BigInt64Array.from(x.data, (v) => BigInt(Math.round(v))), x.dims)
      : new ort.Tensor('float32', x.data, x.dims);
  });
  const r = await session.run(feeds);
  const y = r[session.outputNames[0]];
  writeSafetensors(output, 'y', y.dims.map(Number), y.data);
})().catch((e) => { console.error(String(e)); process.exit(1); });
