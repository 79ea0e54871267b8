// Run a TF.js graph model (pure-JS CPU backend) on raw float32 NHWC inputs and
// write its raw outputs, for comparison with the ONNX conversion.
//
//   node verify_blazeface.mjs <model.json> <outdir> <input1.f32> [input2.f32 ...]
//
// Needs `@tensorflow/tfjs@4` resolvable from the working directory (or set
// NODE_PATH); do not use tfjs-node.  Each input file holds 1*S*S*3 float32
// little-endian values, NHWC, already normalised to [-1, 1] as `human` does.
// For every input `x.f32` and every model output `name` it writes
// <outdir>/x.<name>.f32 and prints the output shapes.  Driven by
// verify_blazeface.py, which also runs onnxruntime and compares.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.cwd(), 'noop.js'));
const tf = require('@tensorflow/tfjs');

const [modelJson, outDir, ...inputs] = process.argv.slice(2);
if (!modelJson || !outDir || inputs.length === 0) {
  console.error('usage: node verify_blazeface.mjs <model.json> <outdir> <input.f32>...');
  process.exit(2);
}

// Minimal file-system IOHandler: tfjs's own file:// loader needs tfjs-node.
function fileHandler(jsonPath) {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
      const dir = path.dirname(jsonPath);
      const specs = [];
      const buffers = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

await tf.setBackend('cpu');
await tf.ready();
const model = await tf.loadGraphModel(fileHandler(modelJson));
const inShape = model.inputs[0].shape.map((d) => (d === -1 || d === null ? 1 : d));
const outNames = model.outputs.map((o) => o.name.split(':')[0]);
console.log(`tfjs ${tf.version.tfjs} backend ${tf.getBackend()} input ${JSON.stringify(inShape)} outputs ${outNames.join(',')}`);
fs.mkdirSync(outDir, { recursive: true });
for (const file of inputs) {
  const buf = fs.readFileSync(file);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const x = tf.tensor(data, inShape, 'float32');
  const res = model.execute(x, outNames);
  const outs = Array.isArray(res) ? res : [res];
  const base = path.basename(file, '.f32');
  for (let i = 0; i < outs.length; i++) {
    const values = outs[i].dataSync();
    fs.writeFileSync(path.join(outDir, `${base}.${outNames[i]}.f32`), Buffer.from(values.buffer, values.byteOffset, values.byteLength));
    console.log(`${base} ${outNames[i]} ${JSON.stringify(outs[i].shape)}`);
  }
  tf.dispose([x, ...outs]);
}
