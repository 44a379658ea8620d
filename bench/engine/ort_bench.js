// ONNX Runtime peer for bench/engine/run.sh (never a dependency of aiserve).
//   node ort_bench.js MODEL THREADS BATCH SECONDS [nospin]
// nospin: intra-op threads block instead of spinning between ops (ORT's
// session.intra_op.allow_spinning = 0), the counterpart of OMP_WAIT_POLICY=passive.
// Prints one line: "ort threads T batch B p50_ms X p99_ms Y ips Z".
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, threads, batch, seconds, spin] = process.argv.slice(2);
  const T = parseInt(threads, 10), B = parseInt(batch, 10), S = parseFloat(seconds);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: T, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: spin === 'nospin' ? { session: { intra_op: { allow_spinning: '0' } } } : {},
  });
  const name = session.inputNames[0];
  // same shape as the model's input with the batch dimension set to B
  const meta = session.inputMetadata ? session.inputMetadata : null;
  let dims = [B, 3, 160, 160];
  if (meta && meta[0] && meta[0].shape) dims = meta[0].shape.map((d, i) => (i === 0 || typeof d !== 'number' ? B : d));
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.random() - 0.5;
  const feeds = { [name]: new ort.Tensor('float32', data, dims) };
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
