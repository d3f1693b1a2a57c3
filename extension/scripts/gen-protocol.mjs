#!/usr/bin/env node
// Generates src/protocol.generated.ts from the OpenRPC document protocol/opencode-rpc.openrpc.json plus the
// methods still waiting in protocol/pending/*.json (each {"methods": [...], "components": {"schemas": {...}}}).
//
//   node scripts/gen-protocol.mjs                    write the file
//   node scripts/gen-protocol.mjs --check            exit 1 when the committed file differs (CI: npm run check-gen)
//   --protocol DIR  --out FILE                       other inputs/outputs (the generator's own tests use a sample)
//
// The output is deterministic (document order, then pending files by name), so a diff means the protocol changed.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export function loadProtocol(protocolDir) {
  const mainFile = path.join(protocolDir, 'opencode-rpc.openrpc.json');
  const docs = [];
  if (fs.existsSync(mainFile)) {
    docs.push({ file: 'opencode-rpc.openrpc.json', doc: readJson(mainFile) });
  } else {
    process.stderr.write(`gen-protocol: warning: ${mainFile} does not exist yet; generating from pending files only\n`);
  }
  const pendingDir = path.join(protocolDir, 'pending');
  if (fs.existsSync(pendingDir)) {
    for (const name of fs.readdirSync(pendingDir).filter((n) => n.endsWith('.json')).sort()) {
      docs.push({ file: `pending/${name}`, doc: readJson(path.join(pendingDir, name)) });
    }
  }
  const methods = [];
  const schemas = new Map();
  const seen = new Map();
  for (const { file, doc } of docs) {
    for (const m of doc.methods ?? []) {
      if (typeof m?.name !== 'string' || m.name.length === 0) throw new Error(`${file}: a method has no name`);
      if (seen.has(m.name)) {
        // The lead folds pending files into the main document; until a pending file is deleted the same method
        // may appear twice. The first (the main document) wins.
        process.stderr.write(`gen-protocol: note: ${m.name} in ${file} is already defined in ${seen.get(m.name)}; keeping the first\n`);
        continue;
      }
      seen.set(m.name, file);
      methods.push(m);
    }
    for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
      if (!schemas.has(name)) schemas.set(name, schema);
    }
  }
  return { methods, schemas, sources: docs.map((d) => d.file) };
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: ${e.message}`);
  }
}

/** "session/fork" -> "SessionFork", "message.part.updated" -> "MessagePartUpdated", "$/progress" -> "Progress". */
export function pascal(name) {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const key = (k) => (IDENT.test(k) ? k : JSON.stringify(k));

/** JSON Schema (the subset OpenRPC documents use) -> a TypeScript type expression. */
export function tsType(schema, indent = '') {
  if (schema === true || schema === undefined || schema === null) return 'unknown';
  if (schema === false) return 'never';
  if (schema.$ref) {
    const m = /^#\/components\/schemas\/(.+)$/.exec(schema.$ref);
    if (!m) throw new Error(`unsupported $ref ${schema.$ref}`);
    return m[1];
  }
  if ('const' in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (Array.isArray(schema.oneOf) || Array.isArray(schema.anyOf)) {
    return (schema.oneOf ?? schema.anyOf).map((s) => wrap(tsType(s, indent))).join(' | ');
  }
  if (Array.isArray(schema.allOf)) return schema.allOf.map((s) => wrap(tsType(s, indent))).join(' & ');
  if (Array.isArray(schema.type)) {
    return schema.type.map((t) => wrap(tsType({ ...schema, type: t }, indent))).join(' | ');
  }
  switch (schema.type) {
    case 'string':
      return 'string';
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array':
      return `${wrap(tsType(schema.items, indent))}[]`;
    case 'object':
    case undefined:
      if (schema.properties || schema.additionalProperties !== undefined || schema.type === 'object') {
        return objectType(schema, indent);
      }
      return 'unknown';
    default:
      throw new Error(`unsupported schema type ${JSON.stringify(schema.type)}`);
  }
}

function wrap(t) {
  return /[|&]/.test(t) && !/^\{[\s\S]*\}$/.test(t) ? `(${t})` : t;
}

function objectType(schema, indent) {
  const props = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  const inner = indent + '  ';
  const lines = [];
  for (const [name, s] of props) {
    lines.push(...doc(s?.description, inner));
    lines.push(`${inner}${key(name)}${required.has(name) ? '' : '?'}: ${tsType(s, inner)};`);
  }
  const extra = schema.additionalProperties;
  // OpenCode objects carry fields we do not list (the server passes them through), so an object without
  // "additionalProperties": false stays open.
  if (extra !== false) {
    lines.push(`${inner}[key: string]: ${extra && extra !== true ? `${tsType(extra, inner)} | undefined` : 'unknown'};`);
  }
  if (lines.length === 0) return '{}';
  return `{\n${lines.join('\n')}\n${indent}}`;
}

function doc(text, indent) {
  if (!text) return [];
  const lines = String(text).replace(/\*\//g, '*\\/').split('\n');
  if (lines.length === 1) return [`${indent}/** ${lines[0]} */`];
  return [`${indent}/**`, ...lines.map((l) => `${indent} * ${l}`.trimEnd()), `${indent} */`];
}

function paramsType(method) {
  const params = method.params ?? [];
  const lines = [];
  for (const p of params) {
    if (p.$ref) throw new Error(`${method.name}: $ref params (content descriptors by reference) are not supported`);
    lines.push(...doc(p.description ?? p.summary, '  '));
    lines.push(`  ${key(p.name)}${p.required ? '' : '?'}: ${tsType(p.schema, '  ')};`);
  }
  return `{\n${lines.join('\n')}\n}`;
}

export function generate(protocol) {
  const { methods, schemas, sources } = protocol;
  const out = [];
  out.push('// GENERATED by scripts/gen-protocol.mjs from ' + (sources.length ? sources.map((s) => `protocol/${s}`).join(', ') : '(no protocol files)') + '.');
  out.push('// Do not edit: run `npm run gen`. CI runs `npm run check-gen` and fails when this file is stale.');
  out.push('/* eslint-disable */');
  const importAt = out.length;
  out.push('');
  for (const [name, schema] of schemas) {
    out.push(...doc(schema.description ?? schema.title, ''));
    out.push(`export type ${name} = ${tsType(schema, '')};`);
    out.push('');
  }
  const requests = [];
  const notifications = [];
  // Every exported name, once: two wire names that map to the same identifier fail here, not in tsc.
  const owners = new Map([...schemas.keys()].map((k) => [k, `schema ${k}`]));
  const claim = (ident, owner) => {
    if (owners.has(ident)) throw new Error(`${owner}: the generated name ${ident} is already used by ${owners.get(ident)}`);
    owners.set(ident, owner);
  };
  for (const m of methods) {
    if (m.name.startsWith('$/')) continue; // protocol plumbing ($/cancelRequest, $/progress) is vscode-jsonrpc's
    const base = pascal(m.name);
    const isNotification = m['x-notification'] === true;
    out.push(...doc([m.summary, m.description].filter(Boolean).join('\n\n'), ''));
    // A method without params is sent without "params" (LSP's shutdown/exit): vscode-jsonrpc's *Type0.
    // Notification params are XNotificationParams: a request and a notification may share a stem
    // (session/diff and session.diff).
    const none = (m.params ?? []).length === 0;
    const name = JSON.stringify(m.name);
    const paramsName = isNotification ? `${base}NotificationParams` : `${base}Params`;
    claim(paramsName, m.name);
    out.push(`export type ${paramsName} = ${none ? 'void' : paramsType(m)};`);
    if (isNotification) {
      claim(`${base}Notification`, m.name);
      out.push(none
        ? `export const ${base}Notification = new NotificationType0(${name});`
        : `export const ${base}Notification = new NotificationType<${paramsName}>(${name}, ParameterStructures.byName);`);
      notifications.push(m.name);
    } else {
      const result = m.result ? tsType(m.result.schema, '') : 'null';
      // A schema may already carry the name (initialize's result is the schema InitializeResult): reuse it.
      if (schemas.has(`${base}Result`)) {
        if (result !== `${base}Result`) throw new Error(`${m.name}: its result type ${base}Result collides with the schema of that name`);
      } else {
        claim(`${base}Result`, m.name);
        out.push(`export type ${base}Result = ${result};`);
      }
      claim(`${base}Request`, m.name);
      out.push(none
        ? `export const ${base}Request = new RequestType0<${base}Result, void>(${name});`
        : `export const ${base}Request = new RequestType<${paramsName}, ${base}Result, void>(${name}, ParameterStructures.byName);`);
      requests.push(m.name);
    }
    out.push('');
  }
  out.push('/** Every request of the protocol document: params and result types by wire name. */');
  out.push('export interface ProtocolRequests {');
  for (const n of requests) out.push(`  ${JSON.stringify(n)}: { params: ${pascal(n)}Params; result: ${pascal(n)}Result };`);
  out.push('}');
  out.push('');
  out.push('/** Every notification of the protocol document: params types by wire name. */');
  out.push('export interface ProtocolNotifications {');
  for (const n of notifications) out.push(`  ${JSON.stringify(n)}: ${pascal(n)}NotificationParams;`);
  out.push('}');
  out.push('');
  out.push('export const requestTypes = {');
  for (const n of requests) out.push(`  ${JSON.stringify(n)}: ${pascal(n)}Request,`);
  out.push('} as const;');
  out.push('');
  out.push('export const notificationTypes = {');
  for (const n of notifications) out.push(`  ${JSON.stringify(n)}: ${pascal(n)}Notification,`);
  out.push('} as const;');
  out.push('');
  const body = out.join('\n');
  const used = ['NotificationType', 'NotificationType0', 'ParameterStructures', 'RequestType', 'RequestType0'].filter((n) =>
    new RegExp(`\\b${n}\\b[<(.]`).test(body),
  );
  if (used.length) out.splice(importAt, 0, `import { ${used.join(', ')} } from 'vscode-jsonrpc';`);
  return out.join('\n');
}

function main(argv) {
  const opt = { protocol: path.resolve(here, '../../protocol'), out: path.resolve(here, '../src/protocol.generated.ts'), check: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--check') opt.check = true;
    else if (argv[i] === '--protocol') opt.protocol = path.resolve(argv[++i]);
    else if (argv[i] === '--out') opt.out = path.resolve(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  const text = generate(loadProtocol(opt.protocol));
  if (opt.check) {
    const current = fs.existsSync(opt.out) ? fs.readFileSync(opt.out, 'utf8') : '';
    if (current !== text) {
      process.stderr.write(`gen-protocol: ${path.relative(process.cwd(), opt.out)} is stale: run \`npm run gen\` in extension/ and commit it\n`);
      return 1;
    }
    process.stdout.write('gen-protocol: up to date\n');
    return 0;
  }
  fs.writeFileSync(opt.out, text);
  process.stdout.write(`gen-protocol: wrote ${path.relative(process.cwd(), opt.out)}\n`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`gen-protocol: ${e.message}\n`);
    process.exitCode = 2;
  }
}
