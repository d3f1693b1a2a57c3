import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';
import { EXT_ROOT } from './support/harness';

const script = path.join(EXT_ROOT, 'scripts', 'gen-protocol.mjs');
const sample = path.join(EXT_ROOT, 'test', 'fixtures', 'protocol');

function gen(...args: string[]) {
  return spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });
}

function typeErrors(file: string): string[] {
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    noUnusedLocals: true,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    typeRoots: [path.join(EXT_ROOT, 'node_modules', '@types')],
    types: [],
  });
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

describe('gen-protocol', () => {
  const dir = fs.mkdtempSync(path.join(EXT_ROOT, 'out', 'gen-'));
  const out = path.join(dir, 'sample.generated.ts');

  test('generates request and notification types from the main document and the pending files', () => {
    const r = gen('--protocol', sample, '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const text = fs.readFileSync(out, 'utf8');
    // main document, pending file, schemas of both
    assert.match(text, /export const SessionGetRequest = new RequestType<SessionGetParams, SessionGetResult, void>\("session\/get", ParameterStructures\.byName\);/);
    assert.match(text, /export const SessionForkRequest = new RequestType<SessionForkParams, SessionForkResult, void>\("session\/fork", ParameterStructures\.byName\);/);
    assert.match(text, /export const SessionUpdatedNotification = new NotificationType<SessionUpdatedNotificationParams>\("session\.updated", ParameterStructures\.byName\);/);
    assert.match(text, /export const ShutdownRequest = new RequestType0<ShutdownResult, void>\("shutdown"\);/);
    assert.match(text, /export type TreeNode = \{[\s\S]*children: TreeNode\[\];[\s\S]*status\?: Status \| null;/);
    assert.match(text, /export type SessionListParams = \{\n  search\?: string;\n  limit\?: number;\n  archived\?: boolean \| null;\n\};/);
    assert.match(text, /export type Strict = \{\n  a\?: 1;\n\};/, 'additionalProperties: false closes the object');
    assert.match(text, /\[key: string\]: number \| undefined;/, 'additionalProperties with a schema');
    // $/ plumbing is vscode-jsonrpc's own; a duplicate in a pending file does not override the main document
    assert.doesNotMatch(text, /cancelRequest/);
    assert.match(text, /export type SessionGetResult = Session;/);
    // a request and a notification with the same stem (session/diff, session.diff) get distinct names
    assert.match(text, /export type SessionDiffParams = \{/);
    assert.match(text, /export type SessionDiffNotificationParams = \{/);
    assert.match(text, /new NotificationType<SessionDiffNotificationParams>\("session\.diff", ParameterStructures\.byName\)/);
    assert.match(r.stderr, /session\/get in pending\/fork\.json is already defined/);
  });

  test('the generated file type-checks', () => {
    assert.equal(gen('--protocol', sample, '--out', out).status, 0);
    assert.deepEqual(typeErrors(out), []);
  });

  test('--check fails on a stale file and passes on a fresh one', () => {
    assert.equal(gen('--protocol', sample, '--out', out).status, 0);
    assert.equal(gen('--protocol', sample, '--out', out, '--check').status, 0);
    fs.appendFileSync(out, '// edited by hand\n');
    const r = gen('--protocol', sample, '--out', out, '--check');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is stale: run `npm run gen`/);
  });

  test('an unsupported $ref fails loudly', () => {
    const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'gen-bad-'));
    fs.writeFileSync(
      path.join(bad, 'opencode-rpc.openrpc.json'),
      JSON.stringify({ methods: [{ name: 'a/b', params: [], result: { name: 'r', schema: { $ref: 'other.json#/X' } } }] }),
    );
    const r = gen('--protocol', bad, '--out', path.join(bad, 'x.ts'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unsupported \$ref other\.json#\/X/);
    fs.rmSync(bad, { recursive: true, force: true });
  });

  test('the committed protocol.generated.ts is up to date with protocol/', () => {
    const r = gen('--check');
    assert.equal(r.status, 0, r.stderr);
  });
});
