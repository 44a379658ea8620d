// ONNX Runtime peer for bench/engine/run.sh (never a dependency of aiserve).
//   node ort_bench.js MODEL THREADS BATCH SECONDS [spin|nospin] [FILE.npy...]
// nospin: intra-op threads block instead of spinning between ops (ORT's
// session.intra_op.allow_spinning = 0), the counterpart of OMP_WAIT_POLICY=passive.
// FILE.npy...: one per model input, in order (float32, int64 ids and masks, any
// shape: a dynamic sequence length); BATCH is then ignored (the files' dim 0).
// Prints one line: "ort threads T batch B p50_ms X p99_ms Y ips Z".
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

// A .npy file as an ORT tensor (little-endian float32/64, int64/32, bool; C order).
function readNpy(path) {
  const buf = fs.readFileSync(path);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape || /'fortran_order':\s*True/.test(header))
    throw new Error(`${path}: unsupported .npy header ${header}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const bytes = buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + start + n * 8);
  const types = {
    '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
    '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array], '|b1': ['bool', Uint8Array],
  };
  const t = types[descr[1]];
  if (!t) throw new Error(`${path}: dtype ${descr[1]} not supported`);
  const data = new t[1](bytes.slice(0, n * t[1].BYTES_PER_ELEMENT));
  return new ort.Tensor(t[0], t[0] === 'bool' ? Array.from(data, (x) => x !== 0) : data, dims);
}

async function main() {
  const [model, threads, batch, seconds, spin, ...files] = process.argv.slice(2);
  const T = parseInt(threads, 10), S = parseFloat(seconds);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: T, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: spin === 'nospin' ? { session: { intra_op: { allow_spinning: '0' } } } : {},
  });
  let B = parseInt(batch, 10);
  let feeds;
  if (files.length) {
    if (files.length !== session.inputNames.length)
      throw new Error(`model has ${session.inputNames.length} inputs; got ${files.length} files`);
    feeds = {};
    session.inputNames.forEach((nm, i) => { feeds[nm] = readNpy(files[i]); });
    B = feeds[session.inputNames[0]].dims[0] || 1;
  } else {
    feeds = randomFeeds(session, B);
  }
  await timeRuns(session, feeds, T, B, S);
}

function randomFeeds(session, B) {
  const name = session.inputNames[0];
  // same shape as the model's input with the batch dimension set to B
  const meta = session.inputMetadata ? session.inputMetadata : null;
  let dims = [B, 3, 160, 160];
  if (meta && meta[0] && meta[0].shape) dims = meta[0].shape.map((d, i) => (i === 0 || typeof d !== 'number' ? B : d));
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.random() - 0.5;
  return { [name]: new ort.Tensor('float32', data, dims) };
}

async function timeRuns(session, feeds, T, B, S) {
  for (let i = 0; i < 5; i++) await session.run(feeds);
  const lat = [];
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(S * 1e9));
  let now = start;
  while (now < end) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    now = process.hrtime.bigint();
    lat.push(Number(now - t0) / 1e6);
  }
  const elapsed = Number(now - start) / 1e9;
  lat.sort((a, b) => a - b);
  const p50 = lat[Math.floor(lat.length / 2)], p99 = lat[Math.floor(lat.length * 0.99)];
  console.log(`ort threads ${T} batch ${B} p50_ms ${p50.toFixed(3)} p99_ms ${p99.toFixed(3)} ips ${(lat.length * B / elapsed).toFixed(1)}`);
}
main().catch((e) => { console.error(e); process.exit(1); });
