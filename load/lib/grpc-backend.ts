/**
 * The gRPC scenario's backend in a process of its own (its CPU per call is measured apart from the client's):
 * lib/grpc.ts `startBenchBackend`, announced as `READY <port>`; exits when stdin closes. Run with vite-node.
 */
import { createInterface } from 'node:readline';
import { startBenchBackend } from './grpc.js';

const backend = await startBenchBackend('bench');
process.stdout.write(`READY ${backend.port}\n`);
createInterface({ input: process.stdin }).on('close', () => process.exit(0));
