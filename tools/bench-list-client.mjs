// session/list of a large project as the extension sees it: the published sidecar over stdio, vscode-jsonrpc as the
// client (its framing and JSON.parse included). 2 warm-up calls, a 2.1 s pause (the index's racy window), 30 timed.
// Usage: node tools/bench-list-client.mjs SIDECAR DATA_DIR PROJECT_DIR  (run from the repo; needs extension/node_modules)
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const [, , exe, data, proj] = process.argv;
const require = createRequire(path.resolve('extension') + '/');
const rpc = require('vscode-jsonrpc/node');
const p = spawn(exe, ['serve', '--data-dir', data], { stdio: ['pipe', 'pipe', 'ignore'] });
const conn = rpc.createMessageConnection(new rpc.StreamMessageReader(p.stdout), new rpc.StreamMessageWriter(p.stdin));
conn.listen();
await conn.sendRequest('initialize', { directory: proj });
let r = await conn.sendRequest('session/list', {});
await new Promise((res) => setTimeout(res, 2100));
r = await conn.sendRequest('session/list', {});
const times = [];
for (let i = 0; i < 30; i++) {
  const t = performance.now();
  r = await conn.sendRequest('session/list', {});
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
console.log(`vscode-jsonrpc client, session/list of ${r.length} sessions: median ${times[15].toFixed(1)} ms (${times[0].toFixed(1)}–${times[29].toFixed(1)})`);
await conn.sendRequest('shutdown');
await conn.sendNotification('exit');
await new Promise((res) => p.on('exit', res));
conn.dispose();
