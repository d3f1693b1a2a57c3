import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EXT_ROOT, agentTurn, ascendingId, createSession, startEnv, startShareServer, until, type Env } from './support/harness';
import { CancellationTokenSource, statusBarItems, StubQuickPick, ui, Uri } from './support/vscode';
import type { SessionInfo } from '../src/protocol';
import { undoTarget } from '../src/commands/undo';
import { buildForest, SessionTreeProvider, treeEdges } from '../src/views/sessionTree';

/** The "not supported by this server" warning for a command whose method the server does not offer. */
function assertUnsupported(title: string, method?: string) {
  const w = ui.texts('warning').find((t) => t.includes('is not supported by this server'));
  assert.ok(w, `expected a "not supported" warning, got ${JSON.stringify(ui.messages)}`);
  assert.ok(w!.startsWith(`OpenCode: ${title} is not supported by this server`), w);
  if (method) assert.match(w!, new RegExp(`does not offer ${method.replace('/', '\\/')}`));
}

let env: Env;
before(async () => {
  env = await startEnv();
});
after(async () => {
  await env.dispose();
});

function fresh() {
  ui.reset();
}

async function get(id: string): Promise<SessionInfo> {
  return env.rpc('session/get', { sessionID: id });
}

describe('package.json', () => {
  test('contributes exactly the commands the extension registers, titled for "OpenCode: …"', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(EXT_ROOT, 'package.json'), 'utf8'));
    const contributed = pkg.contributes.commands.map((c: { command: string }) => c.command).sort();
    assert.deepEqual(contributed, Object.keys(env.commands).sort());
    for (const c of pkg.contributes.commands) {
      assert.equal(c.category, 'OpenCode');
      assert.doesNotMatch(c.title, /^OpenCode/, 'the palette adds the category');
    }
  });
  test("keybindings are OpenCode's defaults with leader ctrl+x; fork is unbound unless enabled", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(EXT_ROOT, 'package.json'), 'utf8'));
    const key = (cmd: string) => pkg.contributes.keybindings.filter((k: { command: string }) => k.command === cmd);
    assert.equal(key('opencodeRpc.newSession')[0].key, 'ctrl+x n');
    assert.equal(key('opencodeRpc.switchSession')[0].key, 'ctrl+x l');
    assert.equal(key('opencodeRpc.undo')[0].key, 'ctrl+x u');
    assert.equal(key('opencodeRpc.redo')[0].key, 'ctrl+x r');
    assert.equal(key('opencodeRpc.exportMarkdown')[0].key, 'ctrl+x x');
    assert.equal(key('opencodeRpc.compact')[0].key, 'ctrl+x c');
    assert.equal(key('opencodeRpc.renameSession')[0].key, 'ctrl+r');
    assert.match(key('opencodeRpc.renameSession')[0].when, /focusedView == 'opencodeRpc\.sessions'/);
    assert.match(key('opencodeRpc.fork')[0].when, /config\.opencodeRpc\.forkKeybinding/);
    assert.equal(pkg.contributes.configuration.properties['opencodeRpc.forkKeybinding'].default, false);
  });
});

describe('session commands', () => {
  test('New Session with a name creates it, makes it current and shows it in the status bar', async () => {
    fresh();
    ui.answer('inputBox', () => 'task-name');
    await env.run('opencodeRpc.newSession');
    const current = env.state.current!;
    assert.equal(current.title, 'task-name');
    assert.equal((await get(current.id)).title, 'task-name');
    assert.match(statusBarItems.at(-1)!.text, /task-name/);
    assert.equal(statusBarItems.at(-1)!.command, 'opencodeRpc.switchSession');
  });

  test('New Session without a name gets the default title; Escape creates nothing', async () => {
    fresh();
    ui.answer('inputBox', () => '');
    await env.run('opencodeRpc.newSession');
    assert.match(env.state.current!.title, /^New session - /);
    const before = (await env.rpc<SessionInfo[]>('session/list', {})).length;
    ui.answer('inputBox', () => undefined);
    await env.run('opencodeRpc.newSession');
    assert.equal((await env.rpc<SessionInfo[]>('session/list', {})).length, before);
  });

  test('Switch Session lists title and "<updated local> • <last 8 of id>", hides archived behind the toggle, and switches', async () => {
    fresh();
    const a = await createSession(env, 'alpha');
    const b = await createSession(env, 'bravo');
    await env.rpc('session/update', { sessionID: b.id, archived: true });
    let labels: string[] = [];
    let archivedLabels: string[] = [];
    let description = '';
    ui.answer('createQuickPick', async (qp: StubQuickPick<{ label: string; description?: string }>) => {
      const items = await qp.settled();
      labels = items.map((i) => i.label);
      description = items.find((i) => i.label === 'alpha')!.description!;
      assert.equal(qp.matchOnDescription, true);
      qp.triggerButton(0);
      await new Promise((r) => setTimeout(r, 0));
      archivedLabels = (await qp.settled()).map((i) => i.label);
      qp.pick('bravo');
    });
    await env.run('opencodeRpc.switchSession');
    assert.ok(labels.includes('alpha') && !labels.includes('bravo'), `archived hidden: ${labels}`);
    assert.ok(archivedLabels.includes('bravo'), `toggle shows archived: ${archivedLabels}`);
    assert.equal(description, `${new Date(a.time.updated).toLocaleString()} • ${a.id.slice(-8)}`);
    assert.equal(env.state.currentId, b.id);
  });

  test('Rename renames the current session on the server; a notification updates the status bar', async () => {
    fresh();
    const s = await createSession(env, 'old name');
    await env.state.setCurrent(s);
    ui.answer('inputBox', (o: { value: string }) => (assert.equal(o.value, 'old name'), 'new name'));
    await env.run('opencodeRpc.renameSession');
    assert.equal((await get(s.id)).title, 'new name');
    // A change made by someone else reaches the status bar through session.updated.
    await env.rpc('session/update', { sessionID: s.id, title: 'renamed elsewhere' });
    await until('status bar refresh', () => statusBarItems.at(-1)!.text.includes('renamed elsewhere'));
  });

  test('Rename (ctrl+r in the session view) acts on the selected session; palette commands on the current one', async () => {
    fresh();
    const current = await createSession(env, 'current one');
    const selected = await createSession(env, 'selected one');
    await env.state.setCurrent(current);
    env.ctx.selection = () => selected.id;
    try {
      ui.answer('inputBox', (o: { value: string }) => (assert.equal(o.value, 'selected one'), 'selected renamed'));
      await env.run('opencodeRpc.renameSession');
      assert.equal((await get(selected.id)).title, 'selected renamed');
      await env.run('opencodeRpc.archiveSession');
      assert.ok((await get(current.id)).time.archived, 'archive went to the current session');
      assert.equal((await get(selected.id)).time.archived, undefined);
    } finally {
      env.ctx.selection = undefined;
    }
  });

  test('Delete asks first: No keeps the session, Delete removes it and clears the current one', async () => {
    fresh();
    const s = await createSession(env, 'doomed');
    await env.state.setCurrent(s);
    ui.answer('confirm', () => undefined);
    await env.run('opencodeRpc.deleteSession');
    assert.equal((await get(s.id)).id, s.id);
    ui.answer('confirm', (m: { text: string; items: string[] }) => (assert.match(m.text, /doomed/), 'Delete'));
    await env.run('opencodeRpc.deleteSession');
    await assert.rejects(get(s.id), /Session not found/);
    assert.equal(env.state.currentId, undefined);
  });

  test('Archive archives, and a second run unarchives', async () => {
    fresh();
    const s = await createSession(env, 'to archive');
    await env.run('opencodeRpc.archiveSession', s.id);
    assert.ok((await get(s.id)).time.archived);
    await env.run('opencodeRpc.archiveSession', s.id);
    assert.equal((await get(s.id)).time.archived, undefined);
  });

  test('a command without a current session says what to do', async () => {
    fresh();
    await env.state.setCurrent(undefined);
    await env.run('opencodeRpc.renameSession');
    assert.match(ui.texts('info')[0], /No current OpenCode session/);
  });

  test('Show Session Tree nests child sessions under their parent', async () => {
    fresh();
    const parent = await createSession(env, 'parent');
    const child = await env.rpc<SessionInfo>('session/create', { title: 'child', parentID: parent.id });
    await env.run('opencodeRpc.showSessionTree');
    assert.ok(ui.executed.some((e) => e.command === 'opencodeRpc.sessions.focus'));
    const roots = await env.tree.getChildren();
    const p = roots.find((n) => n.session.id === parent.id)!;
    assert.deepEqual(p.children.map((c) => c.session.id), [child.id]);
    assert.ok(!roots.some((n) => n.session.id === child.id));
    const item = env.tree.getTreeItem(p);
    assert.equal(item.label, 'parent');
    assert.match(String(item.description), new RegExp(`• ${parent.id.slice(-8)}$`));
  });
});

describe('live refresh', () => {
  test("another client's new session reaches the session view through the server's notifications", async () => {
    fresh();
    await env.tree.getChildren();
    let fired = 0;
    const sub = env.tree.onDidChangeTreeData(() => fired++);
    // A second sidecar on the same data dir would not notify us; our own server does, for changes made through it
    // by any caller: a raw request stands in for the agent.
    const s = await createSession(env, 'made elsewhere');
    await until('tree refresh', () => fired > 0);
    sub.dispose();
    assert.ok((await env.tree.getChildren()).some((n) => n.session.id === s.id));
  });

  test('streamed parts do not reload the session view; the new message that moves the session does, once', async () => {
    fresh();
    const s = await createSession(env, 'streaming');
    const { assistantID } = await agentTurn(env, s.id, 'stream something');
    await env.tree.getChildren();
    await new Promise((r) => setTimeout(r, 400)); // the refresh the turn itself scheduled
    let fired = 0;
    let changes = 0;
    const sub = env.tree.onDidChangeTreeData(() => fired++);
    const sub2 = env.state.onDidChange(() => changes++);
    for (let i = 0; i < 30; i++) {
      await env.rpc('part/update', { part: { id: ascendingId('prt'), sessionID: s.id, messageID: assistantID, type: 'text', text: `chunk ${i}` } });
    }
    await until('the part notifications', () => changes >= 30);
    await new Promise((r) => setTimeout(r, 400)); // past the tree's 250 ms debounce
    assert.equal(fired, 0, 'no reload for message.part.updated');

    await agentTurn(env, s.id, 'a new prompt'); // session.updated (time.updated moved)
    await until('tree refresh', () => fired > 0);
    await new Promise((r) => setTimeout(r, 400));
    sub.dispose();
    sub2.dispose();
    assert.equal(fired, 1, 'one reload for the burst');
  });
});

describe('session view limit', () => {
  test('the view lists the most recently updated sessions up to its limit, and its message says where the rest are', async () => {
    fresh();
    const made: SessionInfo[] = [];
    for (let i = 0; i < 4; i++) {
      made.push(await createSession(env, `limited ${i}`));
      await new Promise((r) => setTimeout(r, 5)); // distinct time.updated
    }
    const limited = new SessionTreeProvider(env.state, 3);
    let note: string | undefined = 'not loaded';
    limited.onLoaded = (n) => (note = n);
    const roots = await limited.getChildren();
    assert.deepEqual(new Set(roots.map((r) => r.session.id)), new Set([made[1].id, made[2].id, made[3].id]));
    assert.equal(note, 'The 3 most recently updated sessions. Switch Session lists them all.');
    limited.dispose();

    const roomy = new SessionTreeProvider(env.state, 10_000);
    roomy.onLoaded = (n) => (note = n);
    assert.ok((await roomy.getChildren()).some((r) => r.session.id === made[0].id));
    assert.equal(note, undefined);
    roomy.dispose();
  });
});

describe('pure helpers', () => {
  const s = (id: string, parentID?: string) => ({ id, title: id, parentID, time: { created: 0, updated: 0 } });
  test('buildForest nests by parentID and by session/tree edges, and survives a cycle', () => {
    const forest = buildForest([s('ses_a'), s('ses_b', 'ses_a'), s('ses_c'), s('ses_x', 'ses_y'), s('ses_y', 'ses_x')], [['ses_a', 'ses_c']]);
    const a = forest.find((n) => n.session.id === 'ses_a')!;
    assert.deepEqual(a.children.map((c) => c.session.id).sort(), ['ses_b', 'ses_c']);
    assert.deepEqual(forest.map((n) => n.session.id).sort(), ['ses_a', 'ses_x', 'ses_y']);
  });
  test('treeEdges chains the ancestors (nearest first) and nests the descendants', () => {
    const node = (id: string, children: unknown[] = []) => ({ sessionID: id, session: null, relation: 'fork', inclusive: false, children });
    const tree = {
      session: { id: 'ses_me' },
      ancestors: [node('ses_origin'), node('ses_first')],
      descendants: [node('ses_f1', [node('ses_f2')]), node('ses_f3')],
    };
    assert.deepEqual(treeEdges(tree), [
      ['ses_origin', 'ses_me'],
      ['ses_first', 'ses_origin'],
      ['ses_me', 'ses_f1'],
      ['ses_f1', 'ses_f2'],
      ['ses_me', 'ses_f3'],
    ]);
  });
  test('undoTarget walks back one user turn at a time', () => {
    const m = (id: string, role: string) => ({ info: { id, sessionID: 's', role, time: { created: 0 } }, parts: [] });
    const msgs = [m('msg_1', 'user'), m('msg_2', 'assistant'), m('msg_3', 'user'), m('msg_4', 'assistant')];
    assert.equal(undoTarget(msgs, undefined), 'msg_3');
    assert.equal(undoTarget(msgs, 'msg_3'), 'msg_1');
    assert.equal(undoTarget(msgs, 'msg_1'), undefined);
  });
});

/** Every method a command needs has landed in the protocol: a server that does not offer one fails the test (a
 * silent "not supported" pass would hide a lost capability). */
function requireMethods(...methods: string[]) {
  for (const m of methods) assert.ok(env.client.supports(m), `the server under test does not offer ${m}`);
}

describe('commands over the later methods (undo, export, import, compact, share, fork)', () => {
  test('a method the server does not offer gets "not supported by this server", not silence', async () => {
    fresh();
    const s = await createSession(env, 'no undo here');
    await env.state.setCurrent(s);
    // The same real server, with session/undo left out of what initialize reported: as an older server would.
    const methods = env.client.initializeResult!.capabilities.methods;
    const saved = [...methods];
    methods.splice(0, methods.length, ...saved.filter((m) => m !== 'session/undo' && m !== 'session/redo'));
    try {
      await env.run('opencodeRpc.undo');
      assertUnsupported('Undo', 'session/undo');
      fresh();
      await env.run('opencodeRpc.redo');
      assertUnsupported('Redo', 'session/redo');
    } finally {
      methods.splice(0, methods.length, ...saved);
    }
  });

  test('Undo restores the file on disk after a preview and a confirmation; Redo brings it back', async () => {
    fresh();
    const s = await createSession(env, 'undo me');
    await env.state.setCurrent(s);
    const file = path.join(env.project, 'hello.txt');
    fs.writeFileSync(file, 'hello\n');
    requireMethods('session/undo', 'session/redo', 'session/revert', 'session/diff', 'step/start', 'step/finish');
    await agentTurn(env, s.id, 'change hello', () => fs.writeFileSync(file, 'changed by the agent\n'));
    let detail = '';
    ui.answer('confirm', (m: { detail: string }) => ((detail = m.detail), 'Undo'));
    await env.run('opencodeRpc.undo');
    assert.deepEqual(ui.texts('error'), []);
    assert.match(detail, /hello\.txt/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'hello\n');
    assert.equal(ui.clipboard, 'change hello');
    // The preview: VS Code's diff editor, the file as it is now on the left, what undo restores on the right.
    const diff = ui.executed.find((e) => e.command === 'vscode.diff');
    assert.ok(diff, 'a diff preview was opened');
    const [now, restored, title] = diff!.args as [Uri, Uri, string];
    assert.equal(now.fsPath, file);
    assert.equal(env.previews.provideTextDocumentContent(restored as never), 'hello\n');
    assert.match(title, /hello\.txt: now ↔ after undo/);
    fresh();
    await env.run('opencodeRpc.redo');
    assert.deepEqual(ui.texts('error'), []);
    assert.equal(fs.readFileSync(file, 'utf8'), 'changed by the agent\n');
  });

  test('Undo declined changes nothing', async () => {
    fresh();
    requireMethods('session/undo');
    const s = await createSession(env, 'keep me');
    await env.state.setCurrent(s);
    const file = path.join(env.project, 'keep.txt');
    await agentTurn(env, s.id, 'add keep', () => fs.writeFileSync(file, 'kept\n'));
    ui.answer('confirm', () => undefined);
    await env.run('opencodeRpc.undo');
    assert.equal(fs.readFileSync(file, 'utf8'), 'kept\n');
  });

  test('Undo over a file the user edited after the AI asks before overwriting it', async () => {
    fresh();
    requireMethods('session/undo');
    const s = await createSession(env, 'conflict');
    await env.state.setCurrent(s);
    const file = path.join(env.project, 'mine.txt');
    fs.writeFileSync(file, 'v1\n');
    await agentTurn(env, s.id, 'edit mine', () => fs.writeFileSync(file, 'v2 by the agent\n'));
    fs.writeFileSync(file, 'v3 by the user, longer\n');
    ui.answer('confirm', (m: { text: string; detail: string }) => {
      assert.match(m.text, /overwrite your own changes/);
      assert.match(m.detail, /mine\.txt/);
      return undefined;
    });
    await env.run('opencodeRpc.undo');
    assert.equal(ui.queue.length, 0);
    assert.equal(fs.readFileSync(file, 'utf8'), 'v3 by the user, longer\n', 'declined: the user edit stays');
    ui.answer('confirm', () => 'Overwrite My Changes');
    ui.answer('confirm', (m: { detail: string }) => (assert.match(m.detail, /mine\.txt/), 'Undo'));
    await env.run('opencodeRpc.undo');
    assert.deepEqual(ui.texts('error'), []);
    assert.equal(fs.readFileSync(file, 'utf8'), 'v1\n', 'forced: restored to before the AI step');
  });

  test('Export Markdown writes session-xxxx.md in the workspace and opens it', async () => {
    fresh();
    const s = await createSession(env, 'export me');
    await env.state.setCurrent(s);
    await agentTurn(env, s.id, 'say hi');
    requireMethods('session/export');
    await env.run('opencodeRpc.exportMarkdown');
    const md = fs.readdirSync(env.project).filter((f) => /^session-.*\.md$/.test(f));
    // OpenCode's name: the first 8 characters of the id, `ses_` included (reference: session-ses_afdb.md).
    assert.deepEqual(md, [`session-${s.id.slice(0, 8)}.md`], `${fs.readdirSync(env.project)}`);
    assert.match(fs.readFileSync(path.join(env.project, md[0]), 'utf8'), /export me[\s\S]*say hi/);
    assert.deepEqual(ui.shown, [path.join(env.project, md[0])]);
  });

  test('Export JSON saves where the dialog says; Import reads it back', async () => {
    fresh();
    const s = await createSession(env, 'round trip');
    await env.state.setCurrent(s);
    await agentTurn(env, s.id, 'remember this');
    requireMethods('session/export', 'session/import');
    const target = path.join(env.root, 'out.json');
    ui.answer('saveDialog', () => Uri.file(target));
    await env.run('opencodeRpc.exportJson');
    assert.equal(JSON.parse(fs.readFileSync(target, 'utf8')).info.id, s.id);
    fresh();
    const file = path.join(env.root, 'out.json');
    ui.answer('quickPick', () => 'From a file…');
    ui.answer('openDialog', () => [Uri.file(file)]);
    await env.run('opencodeRpc.importSession');
    assert.deepEqual(ui.texts('error'), []);
    assert.match(ui.texts('info').at(-1)!, /imported session ses_/);
  });

  test('Import from a share link validates the link first', async () => {
    fresh();
    requireMethods('session/import');
    ui.answer('quickPick', () => 'From a share link…');
    ui.answer('inputBox', () => 'https://example.invalid/not-a-share');
    await env.run('opencodeRpc.importSession');
    assert.match(ui.texts('error')[0], /failed validation/);
  });

  test('Compact runs with cancellable progress', async () => {
    fresh();
    const s = await createSession(env, 'long one');
    await env.state.setCurrent(s);
    requireMethods('session/compact');
    // A long first request and two short turns: a head worth summarizing (else CompactionNoProgress), and a tail.
    await agentTurn(env, s.id, 'Rewrite hello.txt so it greets loudly. ' + 'Keep every line short and plain. '.repeat(300));
    await agentTurn(env, s.id, 'second');
    await agentTurn(env, s.id, 'third');
    const before = (await env.rpc<unknown[]>('message/list', { sessionID: s.id })).length;
    let progressOptions: { cancellable?: boolean; title?: string } | undefined;
    ui.answer('progress', (_cts: CancellationTokenSource, opts: typeof progressOptions) => void (progressOptions = opts));
    await env.run('opencodeRpc.compact');
    assert.deepEqual(ui.texts('error'), []);
    assert.equal(progressOptions?.cancellable, true, 'window.withProgress with cancellation');
    assert.match(progressOptions!.title!, /compacting "long one"/);
    assert.equal(ui.texts('info').at(-1), 'OpenCode: compacted "long one".');
    const after = await env.rpc<{ info: { summary?: boolean } }[]>('message/list', { sessionID: s.id });
    assert.equal(after.length, before + 2, 'the compaction pair (request + summary) was written');
    assert.ok(after.some((m) => m.info.summary === true));
    // Cancelling that notification: summarize.test.ts, where a hanging model keeps the request open until the cancel.
  });

  test('Share asks first, saying what gets uploaded; declined, nothing is shared', async () => {
    fresh();
    const s = await createSession(env, 'share me');
    await env.state.setCurrent(s);
    requireMethods('session/share', 'session/unshare');
    let detail = '';
    ui.answer('confirm', (m: { detail: string }) => ((detail = m.detail), undefined));
    await env.run('opencodeRpc.share');
    assert.match(detail, /uploads the whole session/);
    assert.equal(ui.clipboard, '', 'declined: nothing shared');
  });

  test('Fork of the whole session or from a picked message makes the fork current', async () => {
    fresh();
    const s = await createSession(env, 'origin');
    await env.state.setCurrent(s);
    await agentTurn(env, s.id, 'first prompt');
    await agentTurn(env, s.id, 'second prompt');
    requireMethods('session/fork', 'session/tree');
    let labels: string[] = [];
    ui.answer('quickPick', (items: { label: string }[]) => ((labels = items.map((i) => i.label)), 'second prompt'));
    await env.run('opencodeRpc.fork');
    assert.deepEqual(labels, ['Whole session', 'first prompt', 'done: first prompt', 'second prompt', 'done: second prompt']);
    const fork = env.state.current!;
    assert.notEqual(fork.id, s.id);
    assert.match(fork.title, /origin \(fork #1\)/);
    const msgs = await env.rpc<unknown[]>('message/list', { sessionID: fork.id });
    assert.equal(msgs.length, 2, 'forked before the second prompt: the first turn');
    // After an answer: the answer is kept.
    await env.state.setCurrent(s);
    ui.answer('quickPick', () => 'done: first prompt');
    await env.run('opencodeRpc.fork');
    const after = await env.rpc<{ info: { role: string } }[]>('message/list', { sessionID: env.state.currentId });
    assert.deepEqual(after.map((m) => m.info.role), ['user', 'assistant']);
    // The whole session.
    await env.state.setCurrent(s);
    ui.answer('quickPick', () => 'Whole session');
    await env.run('opencodeRpc.fork');
    assert.equal((await env.rpc<unknown[]>('message/list', { sessionID: env.state.currentId })).length, 4);
    assert.deepEqual(ui.texts('error'), []);
    // The session view nests the fork under its origin (forks are root sessions on disk: the server knows).
    env.tree.refresh();
    const roots = await env.tree.getChildren();
    const origin = roots.find((n) => n.session.id === s.id)!;
    assert.ok(origin.children.some((c) => c.session.id === fork.id), 'fork nested under its origin');
    assert.ok(!roots.some((n) => n.session.id === fork.id));
  });
});

// Share, Unshare and Import from a link against a real share server on 127.0.0.1 (enterprise.url), with their own
// sidecar: the main one runs with OPENCODE_DISABLE_SHARE so nothing else could ever upload.
describe('Share, Import from the link, Unshare (a local share server)', () => {
  let shareEnv: Env;
  let shareServer: Awaited<ReturnType<typeof startShareServer>>;
  before(async () => {
    shareServer = await startShareServer();
    shareEnv = await startEnv({ globalConfig: { enterprise: { url: shareServer.url } }, env: { OPENCODE_DISABLE_SHARE: undefined } });
  });
  after(async () => {
    await shareEnv?.dispose();
    await shareServer?.stop();
  });

  test('Share says what is uploaded and copies the link; Import from that link; Unshare removes it from the server', async () => {
    ui.reset();
    const e = shareEnv;
    const s = await e.rpc<SessionInfo>('session/create', { title: 'share for real' });
    await e.state.setCurrent(s);
    await agentTurn(e, s.id, 'shared prompt');
    const count = (await e.rpc<unknown[]>('message/list', { sessionID: s.id })).length;

    let detail = '';
    ui.answer('confirm', (m: { detail: string }) => ((detail = m.detail), 'Share'));
    await e.run('opencodeRpc.share');
    assert.deepEqual(ui.texts('error'), []);
    assert.match(detail, /uploads the whole session/);
    const link = (await e.rpc<SessionInfo>('session/get', { sessionID: s.id })).share?.url;
    assert.ok(link?.startsWith(`${shareServer.url}/share/`), `link ${link} on ${shareServer.url}`);
    assert.equal(ui.clipboard, link, 'the link is on the clipboard');
    assert.match(ui.texts('info').at(-1)!, /link copied/);
    const slug = link!.split('/share/')[1];
    await until(
      'the share server has every message',
      async () => {
        const r = await fetch(`${shareServer.url}/api/share/${slug}/data`);
        const items = r.ok ? ((await r.json()) as { type: string }[]) : [];
        return items.filter((i) => i.type === 'message').length === count;
      },
      30_000,
    );

    // Import from the link: the input box takes the share link; the session (same id, as OpenCode keeps it) is current.
    ui.reset();
    ui.answer('quickPick', () => 'From a share link…');
    ui.answer('inputBox', (o: { validateInput(v: string): string | undefined }) => (assert.equal(o.validateInput(link!), undefined), link));
    await e.run('opencodeRpc.importSession');
    assert.deepEqual(ui.texts('error'), []);
    assert.match(ui.texts('info').at(-1)!, new RegExp(`imported session ${s.id} \\(${count} messages`));
    assert.equal(e.state.currentId, s.id);

    // Unshare asks, then the shared copy is gone from the server and the session.
    ui.reset();
    let unshareText = '';
    ui.answer('confirm', (m: { text: string }) => ((unshareText = m.text), 'Unshare'));
    await e.run('opencodeRpc.unshare');
    assert.deepEqual(ui.texts('error'), []);
    assert.match(unshareText, /Unshare "share for real"/);
    assert.equal((await e.rpc<SessionInfo>('session/get', { sessionID: s.id })).share, undefined);
    assert.equal((await fetch(`${shareServer.url}/api/share/${slug}/data`)).status, 404);
  });
});
