// run.mjs runs a GOOS=js GOARCH=wasm binary under Node with Dawn as
// navigator.gpu. It is Go's wasm_exec_node.js plus what the engine needs:
// a WebGPU implementation, globalThis.wasm (the bindings read the wasm
// memory through it), blocking stdout/stderr (so output written from a
// JS callback is never lost), and an exit that does not wait for Dawn.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import crypto from 'node:crypto';

const require = createRequire(import.meta.url);

if (process.argv.length < 3) {
  console.error('usage: go_js_wasm_exec wasm-binary [arguments]');
  process.exit(1);
}

for (const s of [process.stdout, process.stderr]) {
  if (s._handle && s._handle.setBlocking) s._handle.setBlocking(true);
}

// Dawn finds no adapter on this kind of machine unless Vulkan is pointed at
// SwiftShader; respect an explicit choice.
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && fs.existsSync(swiftshader)) {
  process.env.VK_ICD_FILENAMES = swiftshader;
}

// Mesa and SwiftShader print a warning per process without a runtime dir.
if (!process.env.XDG_RUNTIME_DIR) {
  const dir = path.join(os.tmpdir(), 'harmony-xdg-' + process.getuid());
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

let gpu = null;
if (process.env.HARMONY_NO_WEBGPU !== '1') {
  try {
    const webgpu = await import('webgpu');
    Object.assign(globalThis, webgpu.globals);
    gpu = webgpu.create([]);
  } catch (e) {
    console.error('run.mjs: npm webgpu unavailable (' + e.message + '); tests run without navigator.gpu');
  }
}
globalThis.navigator = gpu ? { gpu } : {};

globalThis.require = require;
globalThis.fs = fs;
globalThis.path = path;
globalThis.TextEncoder = util.TextEncoder;
globalThis.TextDecoder = util.TextDecoder;
globalThis.performance ??= require('perf_hooks').performance;
globalThis.crypto ??= crypto.webcrypto;

const goroot = process.env.GOROOT || execFileSync('go', ['env', 'GOROOT']).toString().trim();
require(path.join(goroot, 'lib', 'wasm', 'wasm_exec.js'));

const go = new globalThis.Go();
go.argv = process.argv.slice(2);
go.env = Object.assign({ TMPDIR: os.tmpdir() }, process.env);
go.exit = (code) => {
  gpu = null;
  globalThis.navigator = {};
  process.exit(code);
};
try {
  const result = await WebAssembly.instantiate(fs.readFileSync(process.argv[2]), go.importObject);
  globalThis.wasm = result;
  process.on('exit', (code) => {
    if (code === 0 && !go.exited) {
      // Deadlock: make Go print the goroutine stacks.
      go._pendingEvent = { id: 0 };
      go._resume();
    }
  });
  await go.run(result.instance);
} catch (err) {
  console.error(err);
  process.exit(1);
}
