// The end-to-end flow in code-server, through the palette as a person would use it:
//   New Session -> (an agent turn written over RPC by this test, which changes a file) -> Switch Session ->
//   Undo (file checked on disk) -> Redo (checked) -> Export Markdown (file checked) -> Fork -> Switch Session to the fork
//   -> Compact (offline summarizer; the compaction pair checked on disk) -> Share to a real share server on 127.0.0.1
//   (link checked on disk and on the server) -> Import Session from that link (same session, nothing duplicated)
//   -> Unshare (gone on disk and on the server).
// A server that does not offer one of the flow's methods fails the run. A screenshot is taken at the end either way.
// env: CS_URL WS_DIR DATA_DIR DLL SHOT PW_DIR SIDECAR_HOME SHARE_URL [CHROMIUM]
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const { chromium } = createRequire(path.join(process.env.PW_DIR, 'package.json'))('playwright-core');
const rpcLib = createRequire(path.join(here, '..', '..', 'package.json'))('vscode-jsonrpc/node');

const { CS_URL, WS_DIR, DATA_DIR, DLL, SHOT, SHARE_URL } = process.env;
const t0 = Date.now();
const lap = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the test's own sidecar on the same data dir: plays the agent -------------------------------------------------

async function startAgentSidecar() {
  const home = path.join(process.env.SIDECAR_HOME, 'agent-home');
  fs.mkdirSync(home, { recursive: true });
  const proc = spawn('dotnet', [DLL, 'serve', '--data-dir', DATA_DIR], {
    cwd: WS_DIR,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, 'config') },
  });
  proc.stderr.on('data', () => undefined);
  const conn = rpcLib.createMessageConnection(new rpcLib.StreamMessageReader(proc.stdout), new rpcLib.StreamMessageWriter(proc.stdin));
  conn.listen();
  const call = (method, params) => conn.sendRequest(method, rpcLib.ParameterStructures.byName, params ?? {});
  const init = await call('initialize', { directory: WS_DIR });
  return {
    call,
    methods: new Set(init.capabilities.methods),
    async stop() {
      await conn.sendRequest('shutdown');
      await conn.sendNotification('exit');
      await new Promise((r) => proc.once('exit', r));
      conn.dispose();
    },
  };
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
let lastMs = 0;
let counter = 0;
function ascendingId(prefix) {
  const now = Date.now();
  if (now !== lastMs) [lastMs, counter] = [Math.max(now, lastMs), 0];
  counter++;
  const hex = ((BigInt(lastMs) * 4096n + BigInt(counter)) & 0xffffffffffffn).toString(16).padStart(12, '0');
  return `${prefix}_${hex}${[...crypto.randomBytes(14)].map((b) => BASE62[b % 62]).join('')}`;
}

/** One agent turn: user prompt, assistant reply, and (when the server records steps) a step around the file change. */
async function agentTurn(agent, sessionID, prompt, change) {
  const now = Date.now();
  const userID = ascendingId('msg');
  await agent.call('message/update', {
    info: { id: userID, sessionID, role: 'user', time: { created: now }, agent: 'build', model: { providerID: 'test', modelID: 'e2e' } },
  });
  await agent.call('part/update', { part: { id: ascendingId('prt'), sessionID, messageID: userID, type: 'text', text: prompt } });
  const assistantID = ascendingId('msg');
  await agent.call('message/update', {
    info: {
      id: assistantID, sessionID, role: 'assistant', time: { created: now + 1 }, parentID: userID, modelID: 'e2e', providerID: 'test',
      mode: 'build', agent: 'build', path: { cwd: WS_DIR, root: WS_DIR }, cost: 0,
      tokens: { input: 1, output: 1, reasoning: 0, cache: { read: 0, write: 0 } },
    },
  });
  const steps = agent.methods.has('step/start') && agent.methods.has('step/finish');
  if (steps) await agent.call('step/start', { sessionID, messageID: assistantID });
  change();
  await agent.call('part/update', { part: { id: ascendingId('prt'), sessionID, messageID: assistantID, type: 'text', text: 'Done.' } });
  if (steps) await agent.call('step/finish', { sessionID, messageID: assistantID, reason: 'stop' });
  return steps;
}

// ---- the workbench ----------------------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-dev-shm-usage', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const qi = page.locator('.quick-input-widget');
const statusBar = page.locator('#workbench\\.parts\\.statusbar');
const toasts = page.locator('.notifications-toasts');

/** F1, type the title, wait for the row; the extension host registers its commands a few seconds after the
 * workbench renders and an open palette does not refresh (VSCODE-E2E.md pitfall 5), so retry until it shows. */
async function runCommand(title) {
  const deadline = Date.now() + 90_000;
  for (;;) {
    await page.keyboard.press('F1');
    await qi.waitFor({ state: 'visible', timeout: 15_000 });
    // Type only once the palette's input has the focus: keys typed earlier land in the editor that had it.
    const focused = await page
      .waitForFunction(() => document.activeElement?.closest('.quick-input-widget') != null, null, { timeout: 5_000 })
      .then(() => true, () => false);
    if (!focused) {
      if (Date.now() > deadline) throw new Error(`the palette never took the focus for "${title}"`);
      await page.keyboard.press('Escape');
      continue;
    }
    await page.keyboard.type(title);
    const row = qi.locator('.monaco-list-row', { hasText: title }).first();
    try {
      await row.waitFor({ timeout: 2_500 });
      await page.keyboard.press('Enter');
      lap(`palette: ${title}`);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`command "${title}" never appeared in the palette`);
      await page.keyboard.press('Escape');
      await sleep(1_000);
    }
  }
}

async function pickInQuickPick(placeholder, text, rowText = text) {
  await page.locator(`.quick-input-widget input[placeholder="${placeholder}"]`).waitFor({ timeout: 30_000 });
  await page.keyboard.type(text);
  await qi.locator('.monaco-list-row', { hasText: rowText }).first().waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
}

async function clickDialogButton(label) {
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 30_000 });
  await dialog.locator('.monaco-button', { hasText: label }).first().click();
  await dialog.waitFor({ state: 'hidden', timeout: 10_000 });
}

/** Polls until `check(body)` holds for the file; `file` may be a function (re-resolved each poll). */
async function waitFile(fileOrFn, check, what, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const file = typeof fileOrFn === 'function' ? fileOrFn() : fileOrFn;
    const body = file && fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
    if (check(body)) return body;
    if (Date.now() > end) throw new Error(`${what}: ${file ? path.basename(file) : '(no file)'} is ${JSON.stringify(body)}`);
    await sleep(100);
  }
}

/** Show Session Tree: the sessions view lists the session; with forks, the fork is nested one level below it. */
async function showTree(nestedFork) {
  await runCommand('OpenCode: Show Session Tree');
  const pane = page.locator('.pane', { has: page.locator('.pane-header', { hasText: 'OpenCode Sessions' }) });
  await pane.locator('.monaco-list-row', { hasText: 'e2e-task' }).first().waitFor({ timeout: 30_000 });
  if (nestedFork) {
    await pane.locator('.monaco-list-row[aria-level="2"]', { hasText: nestedFork }).first().waitFor({ timeout: 30_000 });
  }
  lap(`session tree shows e2e-task${nestedFork ? ` with "${nestedFork}" nested under it` : ''}`);
}

// ---- the store on disk, read directly (what OpenCode itself would read) -------------------------------------------

const storage = (...p) => path.join(DATA_DIR, 'storage', ...p);
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const jsonFiles = (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => path.join(dir, f)) : []);

/** A session's file, wherever its project put it. */
function sessionFile(id) {
  for (const project of fs.readdirSync(storage('session'))) {
    const f = storage('session', project, `${id}.json`);
    if (fs.existsSync(f)) return f;
  }
  return undefined;
}

/** A session's messages with their parts, from the store's files. */
function messagesOnDisk(id) {
  return jsonFiles(storage('message', id))
    .map((f) => readJson(f))
    .map((info) => ({ info, parts: jsonFiles(storage('part', info.id)).map(readJson) }))
    .sort((a, b) => a.info.time.created - b.info.time.created || (a.info.id < b.info.id ? -1 : 1));
}

async function until(what, check, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(100);
  }
}

/** The text of the newest toast that matches. */
async function toastText(pattern) {
  const toast = toasts.getByText(pattern).last();
  await toast.waitFor({ timeout: 60_000 });
  return (await toast.textContent()) ?? '';
}

/** Compact -> Share -> Import from the link -> Unshare, on the current session (the fork). */
async function compactShareImportUnshare(agent, fork) {
  // A long first request and two short turns: a head worth summarizing, and the kept tail.
  await agentTurn(agent, fork.id, 'Rewrite hello.txt so it greets loudly. ' + 'Keep every line short and plain. '.repeat(300), () => undefined);
  await agentTurn(agent, fork.id, 'Now add a second line.', () => undefined);
  await agentTurn(agent, fork.id, 'And a third one.', () => undefined);
  const before = messagesOnDisk(fork.id);
  await runCommand('OpenCode: Compact Session');
  await toastText(`compacted "${fork.title}"`);
  const after = messagesOnDisk(fork.id);
  const request = after.find((m) => m.info.role === 'user' && m.parts.some((p) => p.type === 'compaction'));
  const summary = after.find((m) => m.info.summary === true);
  if (!request || !summary) throw new Error(`Compact: no compaction pair on disk (${after.length} messages)`);
  if (summary.info.parentID !== request.info.id || summary.info.mode !== 'compaction' || summary.info.finish !== 'stop') {
    throw new Error(`Compact: the summary message is not OpenCode's shape: ${JSON.stringify(summary.info)}`);
  }
  const summaryText = summary.parts.find((p) => p.type === 'text')?.text ?? '';
  // The offline summary's goal is the session's first real request (the fork's, from e2e-task).
  if (!/## Goal[\s\S]*make hello louder/.test(summaryText)) throw new Error(`Compact: the summary misses the goal: ${summaryText.slice(0, 300)}`);
  if (after.length !== before.length + 2 || !before.every((b) => after.some((a) => a.info.id === b.info.id))) {
    throw new Error(`Compact: expected every earlier message plus the pair (${before.length} + 2), found ${after.length}`);
  }
  lap(`compacted: request ${request.info.id} + summary on disk, all ${before.length} earlier messages kept`);

  // Share: the confirmation says what gets uploaded; the link lands in the session file and on the share server.
  await runCommand('OpenCode: Share Session');
  await clickDialogButton('Share');
  const shared = await toastText('OpenCode: shared; link copied:');
  const link = /(https?:\/\/\S+\/share\/[\w-]+)/.exec(shared)?.[1];
  if (!link || !link.startsWith(SHARE_URL + '/share/')) throw new Error(`Share: the link ${link} is not on ${SHARE_URL}`);
  const onDisk = readJson(sessionFile(fork.id));
  if (onDisk.share?.url !== link) throw new Error(`Share: the session file says ${JSON.stringify(onDisk.share)}, the toast ${link}`);
  const slug = link.split('/share/')[1];
  const data = await until('the share server has the session', async () => {
    const r = await fetch(`${SHARE_URL}/api/share/${slug}/data`);
    const items = r.ok ? await r.json() : [];
    return items.filter((i) => i.type === 'message').length === after.length ? items : undefined;
  });
  lap(`shared: ${link} (${data.length} items on the share server)`);

  // Import Session from the link. The shared session is this store's own, and an import keeps the session's id as
  // OpenCode's does, so it lands on the same session and, being idempotent, duplicates nothing: the toast's counts come
  // from the share server's data, and the store holds exactly the messages it held.
  await runCommand('OpenCode: Import Session');
  await pickInQuickPick('Import from', 'share link', 'From a share link');
  await page.locator('.quick-input-widget input[placeholder="https://opncd.ai/share/abc123"]').waitFor({ timeout: 30_000 });
  await page.keyboard.type(link);
  await page.keyboard.press('Enter');
  const importedToast = await toastText('OpenCode: imported session');
  const [, imported, count] = /imported session (ses_\w+) \((\d+) messages/.exec(importedToast) ?? [];
  const again = messagesOnDisk(fork.id).map((m) => m.info.id);
  if (imported !== fork.id || Number(count) !== after.length || again.join() !== after.map((m) => m.info.id).join()) {
    throw new Error(`Import: "${importedToast}"; on disk ${again.length} messages, expected the same ${after.length}`);
  }
  lap(`imported the link: ${count} messages from the share server, into ${imported} (idempotent: nothing duplicated)`);

  await runCommand('OpenCode: Unshare Session');
  await clickDialogButton('Unshare');
  await toastText(`"${fork.title}" is no longer shared`);
  if (readJson(sessionFile(fork.id)).share) throw new Error('Unshare: the session file still has share');
  const gone = await fetch(`${SHARE_URL}/api/share/${slug}/data`);
  if (gone.status !== 404) throw new Error(`Unshare: the share server still answers ${gone.status} for ${slug}`);
  lap('unshared: the link is gone from the session file and the share server answers 404');
}

let ok = false;
let outcome = '';
let agent;
try {
  agent = await startAgentSidecar();
  await page.goto(`${CS_URL}?folder=${encodeURIComponent(WS_DIR)}`, { waitUntil: 'domcontentloaded' });
  await statusBar.waitFor({ timeout: 60_000 });
  await page.locator('.explorer-folders-view, .explorer-viewlet').first().waitFor({ timeout: 60_000 });
  lap('workbench ready');

  // New Session, named like `/new e2e-task`.
  await runCommand('OpenCode: New Session');
  await page.locator('.quick-input-widget input[placeholder="task-name"]').waitFor({ timeout: 30_000 });
  await page.keyboard.type('e2e-task');
  await page.keyboard.press('Enter');
  await statusBar.getByText('e2e-task').waitFor({ timeout: 30_000 });
  const session = (await agent.call('session/list', {})).find((s) => s.title === 'e2e-task');
  if (!session) throw new Error('New Session did not create "e2e-task" in the data dir');
  lap(`session ${session.id} created; status bar shows it`);

  // The agent's turn, written over RPC: it changes hello.txt.
  const hello = path.join(WS_DIR, 'hello.txt');
  const steps = await agentTurn(agent, session.id, 'make hello louder', () => fs.writeFileSync(hello, 'HELLO!\n'));
  lap(`agent turn written${steps ? ' with a step (snapshot + patch)' : ' (the server has no step/start: no snapshot)'}`);

  // Switch Session: a second session first, so switching back is visible.
  await runCommand('OpenCode: New Session');
  await page.locator('.quick-input-widget input[placeholder="task-name"]').waitFor({ timeout: 30_000 });
  await page.keyboard.type('other-task');
  await page.keyboard.press('Enter');
  await statusBar.getByText('other-task').waitFor({ timeout: 30_000 });
  await runCommand('OpenCode: Switch Session');
  await pickInQuickPick('Search sessions by title, date or id', 'e2e-task');
  await statusBar.getByText('e2e-task').waitFor({ timeout: 30_000 });
  lap('switched back to e2e-task');

  // Every method of the flow has landed: a server without one fails the run instead of passing a shortened flow.
  const missing = ['session/undo', 'session/redo', 'session/export', 'session/fork', 'session/tree', 'session/compact', 'session/share', 'session/import', 'session/unshare'].filter(
    (m) => !agent.methods.has(m),
  );
  if (missing.length) throw new Error(`the server under test does not offer ${missing.join(', ')}`);
  {
    // Undo: the confirmation lists the file, then the file is restored on disk.
    await runCommand('OpenCode: Undo');
    await clickDialogButton('Undo');
    await waitFile(hello, (b) => b === 'hello\n', 'Undo did not restore the file');
    lap('undo restored hello.txt');

    await runCommand('OpenCode: Redo');
    await waitFile(hello, (b) => b === 'HELLO!\n', 'Redo did not bring the change back');
    lap('redo re-applied hello.txt');

    await runCommand('OpenCode: Export Markdown');
    const markdownFile = () => {
      const name = fs.readdirSync(WS_DIR).find((f) => /^session-.*\.md$/.test(f));
      return name && path.join(WS_DIR, name);
    };
    const exported = await waitFile(
      markdownFile,
      (b) => b !== undefined && b.includes('e2e-task') && b.includes('make hello louder'),
      'Export Markdown',
    ).catch(async (e) => {
      const found = fs.readdirSync(WS_DIR).filter((f) => f.endsWith('.md'));
      throw new Error(`${e.message} (markdown files: ${found.join(', ') || 'none'})`);
    });
    // The command opens the file, then says so: wait for that, so the editor cannot take the focus from the next
    // palette halfway through.
    await toasts.getByText('OpenCode: exported').first().waitFor({ timeout: 30_000 });
    await page.locator('.tab.active', { hasText: /^session-/ }).first().waitFor({ timeout: 30_000 });
    lap(`exported markdown (${exported.length} bytes), opened in the editor`);

    await runCommand('OpenCode: Fork Session');
    await pickInQuickPick('Fork the whole session, or from a message', 'Whole session');
    await statusBar.getByText('fork #1').waitFor({ timeout: 30_000 });
    lap('forked; the fork is current');

    await runCommand('OpenCode: Switch Session');
    await pickInQuickPick('Search sessions by title, date or id', 'other-task');
    await statusBar.getByText('other-task').waitFor({ timeout: 30_000 });
    await runCommand('OpenCode: Switch Session');
    await pickInQuickPick('Search sessions by title, date or id', 'fork #1', 'e2e-task (fork #1)');
    await statusBar.getByText('e2e-task (fork #1)').waitFor({ timeout: 30_000 });
    lap('switched to the fork');
    await showTree('e2e-task (fork #1)');
    const fork = (await agent.call('session/list', {})).find((s) => s.title === 'e2e-task (fork #1)');
    await compactShareImportUnshare(agent, fork);
    outcome =
      'full flow: New Session, agent turn, Switch, Undo, Redo, Export Markdown, Fork, Switch to the fork, Session Tree, ' +
      'Compact, Share, Import from the link, Unshare';
    ok = true;
  }
} catch (e) {
  console.log('FAILED:', e.message);
} finally {
  await page.screenshot({ path: SHOT }).catch(() => undefined);
  lap(`screenshot ${SHOT}`);
  await browser.close();
  await agent?.stop().catch(() => undefined);
}
console.log(ok ? `E2E PASS: ${outcome}` : 'E2E FAIL');
console.log(ok ? '1 passed, 0 failed' : '0 passed, 1 failed');
process.exit(ok ? 0 : 1);
