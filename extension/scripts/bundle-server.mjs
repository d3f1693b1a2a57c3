#!/usr/bin/env node
// Puts the NativeAOT sidecar (../scripts/publish.sh -> ../artifacts/opencode-rpc/) into server/, so the .vsix carries
// it and the extension runs it by default. Without a published sidecar, server/ is emptied and the .vsix relies on
// the opencodeRpc.serverPath setting (or, run from the repository, on the repository's build).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ext = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const published = path.resolve(ext, '..', 'artifacts', 'opencode-rpc');
const server = path.join(ext, 'server');
fs.rmSync(server, { recursive: true, force: true });
if (fs.existsSync(path.join(published, 'opencode-rpc'))) {
  fs.cpSync(published, server, { recursive: true });
  console.log(`bundle-server: bundled ${published} into server/`);
} else {
  console.log('bundle-server: no published sidecar (../scripts/publish.sh); the .vsix carries none');
}
