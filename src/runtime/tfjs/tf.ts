/**
 * TF.js as kprune uses it: the core (tensors, ops, gradients, io), layers (LayersModel), the
 * converter (GraphModel) and the plain-JavaScript cpu backend, without the `@tensorflow/tfjs`
 * umbrella, which adds tf.data and the WebGL backend (141 MB installed, of no use under Node).
 * The wasm backend is loaded beside this by backend.ts; tfjs-node, when installed, registers itself
 * on the same core. Load it only through backend.ts (`tfjsRuntime()`), so ONNX runs never load TF.js.
 */
export * from '@tensorflow/tfjs-core';
export * from '@tensorflow/tfjs-layers';
export * from '@tensorflow/tfjs-converter';
// Registers the 'cpu' backend: the fallback when neither tfjs-node nor wasm works.
import '@tensorflow/tfjs-backend-cpu';
