// Manual interop check: node tests/OpenCode.Rpc.Soak/vscode-jsonrpc-interop.js <opencode-rpc.dll> <empty dir>
// (point the require below at extension/node_modules). vscode-jsonrpc 10 client + a raw bad frame mid-stream.
const { spawn } = require('child_process');
const rpc = require(process.env.VSCODE_JSONRPC || '../../extension/node_modules/vscode-jsonrpc/lib/node/main.js');
const dll = process.argv[2], data = process.argv[3];
const p = spawn('dotnet', ['exec', dll, 'serve', '--data-dir', data, '--directory', data], { stdio: ['pipe', 'pipe', 'inherit'] });
const c = rpc.createMessageConnection(new rpc.StreamMessageReader(p.stdout), new rpc.StreamMessageWriter(p.stdin));
const notes = [];
c.onNotification((m, params) => notes.push(m));
c.listen();
(async () => {
  const init = await c.sendRequest('initialize', { directory: data });
  const s = await c.sendRequest('session/create', { title: 'interop' });
  let err;
  try { await c.sendRequest('session/get', { sessionID: 'ses_../x' }); } catch (e) { err = e; }
  // a raw bad frame in the middle, then a normal request
  p.stdin.write('Content-Length: abc\r\n\r\n{}');
  const list = await c.sendRequest('session/list', {});
  console.log(JSON.stringify({ server: init.serverInfo.name, created: s.id, errCode: err && err.code, listed: list.length, notes }));
  await c.sendRequest('shutdown'); c.sendNotification('exit');
  p.on('exit', code => { console.log('exit', code); process.exit(0); });
})().catch(e => { console.error('FAIL', e); process.exit(1); });
