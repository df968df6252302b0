// edge-echo's Node host: `node node.mjs NODE_MODULES` serves host.mjs over stdio, one JSON
// request a line in ({id, method, params}), one JSON answer a line out, each answer line
// starting with "@ee " so that nothing a native library prints can be taken for one.
import {createRequire} from "node:module";
import {createInterface} from "node:readline";
import {pathToFileURL} from "node:url";
import {makeHost, onnxEngine} from "./host.mjs";

const [modules] = process.argv.slice(2);
const require = createRequire(`${modules}/`);
const write = (answer) => process.stdout.write(`@ee ${JSON.stringify(answer)}\n`);
console.log = console.info = console.warn = console.error;

let host;
try {
  const ort = await import(pathToFileURL(require.resolve("onnxruntime-node")).href);
  host = makeHost({onnxruntime: onnxEngine(ort.default || ort, "cpu")});
  write({ready: true});
} catch (error) {
  write({ready: false, error: String(error && error.message || error).split("\n")[0]});
  process.exit(0);
}

for await (const line of createInterface({input: process.stdin})) {
  if (!line.trim()) continue;
  const {id, method, params} = JSON.parse(line);
  try {
    write({id, result: await host[method](...params)});
  } catch (error) {
    write({id, error: String(error && error.message || error).split("\n")[0]});
  }
}
