// The editor's model as the compaction summarizer: the REAL sidecar sends compaction/summarize to the extension's
// handler, which asks a language model through vscode.lm. Only the model is a stand-in (at the vscode.lm boundary);
// the server, the RPC and the store are real, and what the server wrote is read back from it.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { chatMessages } from '../src/summarize';
import type { ContextMessage } from '../src/protocol.generated';
import { agentTurn, createSession, startEnv, until, type Env } from './support/harness';
import { CancellationTokenSource, LanguageModelChatMessage, LanguageModelError, lm, testConfig, ui, type StubChatModel } from './support/vscode';

interface Msg {
  info: { id: string; role: string; summary?: boolean; mode?: string; providerID?: string };
  parts: { type: string; text?: string }[];
}

/** A chat model that answers with `chunks`, streamed, and records what it was sent. */
function stubModel(opts: {
  name?: string;
  vendor?: string;
  family?: string;
  chunks?: string[];
  maxInputTokens?: number;
  fail?: Error;
  /** Streams the first chunk, then waits for the request's cancellation. */
  hang?: boolean;
}) {
  const calls: { messages: LanguageModelChatMessage[]; options: { justification?: string } | undefined }[] = [];
  const state = { streaming: false, sawCancel: false };
  const model: StubChatModel = {
    name: opts.name ?? 'Stub Model',
    id: `${opts.vendor ?? 'stub'}-${opts.family ?? 'm1'}`,
    vendor: opts.vendor ?? 'stub',
    family: opts.family ?? 'm1',
    version: '1',
    maxInputTokens: opts.maxInputTokens ?? 100_000,
    async countTokens(text) {
      return Math.ceil((typeof text === 'string' ? text : text.text).length / 4);
    },
    async sendRequest(messages, options, token) {
      calls.push({ messages, options: options as { justification?: string } });
      if (opts.fail) throw opts.fail;
      const chunks = opts.chunks ?? ['## Goal\n', '- summarized by the stub'];
      async function* text() {
        for (const c of chunks) {
          state.streaming = true;
          yield c;
          if (opts.hang) {
            await new Promise<void>((r) => (token?.isCancellationRequested ? r() : token?.onCancellationRequested(() => r())));
            state.sawCancel = true;
            return;
          }
        }
      }
      return { text: text(), stream: text() };
    },
  };
  return { model, calls, state };
}

let env: Env;
before(async () => {
  env = await startEnv();
});
after(async () => {
  await env.dispose();
});
afterEach(() => {
  lm.models = [];
  lm.selectors = [];
  delete testConfig['opencodeRpc.summarizer'];
  delete testConfig['opencodeRpc.summarizerModel'];
});

/** A session worth compacting: a long first request (the head) and two small turns (the kept tail). */
async function longSession(title: string) {
  const s = await createSession(env, title);
  await env.state.setCurrent(s);
  const goal = 'Make the JSON parser in src/parser.ts handle unicode escapes. ' + 'It must stay dependency free. '.repeat(400);
  await agentTurn(env, s.id, goal);
  await agentTurn(env, s.id, 'Now add tests for numbers.');
  await agentTurn(env, s.id, 'Also handle surrogate pairs.');
  return s;
}

const messages = (sessionID: string) => env.rpc<Msg[]>('message/list', { sessionID });
const summaryOf = (list: Msg[]) => list.find((m) => m.info.summary === true);

describe('compaction/summarize answered by a VS Code language model', () => {
  test('Compact with summarizer "vscode": the chosen model writes the summary the server stores, with progress in the Compact notification', async () => {
    ui.reset();
    testConfig['opencodeRpc.summarizer'] = 'vscode';
    testConfig['opencodeRpc.summarizerModel'] = 'copilot/gpt-4o';
    const other = stubModel({ name: 'Other', vendor: 'other', family: 'x' });
    const chosen = stubModel({ name: 'GPT-4o', vendor: 'copilot', family: 'gpt-4o', chunks: ['## Goal\n', '- Unicode escapes in src/parser.ts\n', '## Next Steps\n- surrogate pairs'] });
    lm.models = [other.model, chosen.model];
    const s = await longSession('with the editor model');

    await env.run('opencodeRpc.compact');

    assert.deepEqual(ui.texts('error'), []);
    assert.deepEqual(lm.selectors.at(-1), { vendor: 'copilot', family: 'gpt-4o' });
    assert.equal(other.calls.length, 0);
    assert.equal(chosen.calls.length, 1);
    const sent = chosen.calls[0].messages;
    assert.match(sent[0].text, /^You are a helpful AI assistant tasked with summarizing/, 'the system prompt comes first, as a user message');
    assert.match(sent[0].text, /Make the JSON parser in src\/parser\.ts handle unicode escapes/, 'the head of the conversation is sent');
    assert.match(sent.at(-1)!.text, /Create a new anchored summary[\s\S]*## Relevant Files/, "the server's prompt is the last user message");
    assert.ok(chosen.calls[0].options?.justification, 'VS Code shows the user why the model is used');

    const summary = summaryOf(await messages(s.id));
    assert.ok(summary, 'a summary message was written');
    assert.equal(summary!.parts.find((p) => p.type === 'text')?.text, '## Goal\n- Unicode escapes in src/parser.ts\n## Next Steps\n- surrogate pairs');
    assert.match(ui.texts('info').at(-1)!, /compacted "with the editor model"/);
    const reports = ui.progress.filter((p) => p.title?.includes('compacting'));
    assert.ok(reports.some((p) => /GPT-4o is writing the summary/.test(p.message ?? '')), JSON.stringify(ui.progress));
    assert.ok(!ui.progress.some((p) => p.title?.includes('summarizing the session')), 'no second notification');
  });

  test('no model available: the server writes nothing, says why, and Compact offers the offline summary, which then compacts', async () => {
    ui.reset();
    testConfig['opencodeRpc.summarizer'] = 'vscode';
    const s = await longSession('no model here');
    const before = (await messages(s.id)).length;
    let offered: { text: string; items: string[] } | undefined;
    ui.answer('confirm', async (m: { text: string; items: string[] }) => {
      offered = m;
      assert.equal((await messages(s.id)).length, before, 'the failed compaction wrote nothing');
      return 'Compact Offline';
    });

    await env.run('opencodeRpc.compact');

    assert.ok(offered, 'Compact offered a way out');
    assert.match(offered!.text, /Compact Session failed: The client could not summarize: no VS Code language model is available/);
    assert.deepEqual(offered!.items, ['Compact Offline']);
    const after = await messages(s.id);
    assert.equal(after.length, before + 2, 'the offline compaction wrote its pair');
    assert.match(summaryOf(after)!.parts[0].text!, /## Goal/);
  });

  test('cancelling the Compact notification cancels the server request and the model request; nothing is written', async () => {
    ui.reset();
    testConfig['opencodeRpc.summarizer'] = 'vscode';
    const slow = stubModel({ hang: true, chunks: ['## Goal\n', 'never sent'] });
    lm.models = [slow.model];
    const s = await longSession('cancel me');
    const before = (await messages(s.id)).length;
    ui.answer('progress', async (cts: CancellationTokenSource) => {
      await until('the model is streaming', () => slow.state.streaming, 30_000);
      cts.cancel();
    });

    await env.run('opencodeRpc.compact');

    assert.equal(ui.texts('info').at(-1), 'OpenCode: compaction cancelled.');
    await until('the model request saw the cancellation', () => slow.state.sawCancel);
    assert.equal((await messages(s.id)).length, before);
    assert.deepEqual(ui.texts('error'), []);
  });

  test('summarizer "server" (the default): a client-summarizer request is refused with a message naming the setting', async () => {
    ui.reset();
    const model = stubModel({});
    lm.models = [model.model];
    const s = await longSession('not allowed');
    const before = (await messages(s.id)).length;
    await assert.rejects(env.rpc('session/compact', { sessionID: s.id, summarizer: 'client' }), (e: { code: number; message: string }) => {
      assert.equal(e.code, -32141, 'SummarizerFailed');
      assert.match(e.message, /opencodeRpc\.summarizer/);
      return true;
    });
    assert.equal(model.calls.length, 0, 'the model was not asked');
    assert.equal((await messages(s.id)).length, before);
  });

  test("the model's own refusal (the user declined VS Code's permission prompt) reaches the caller through SummarizerFailed", async () => {
    ui.reset();
    testConfig['opencodeRpc.summarizer'] = 'vscode';
    lm.models = [stubModel({ name: 'Picky', fail: LanguageModelError.NoPermissions('The user did not allow it.') }).model];
    const s = await longSession('refused');
    const before = (await messages(s.id)).length;
    await assert.rejects(env.rpc('session/compact', { sessionID: s.id, summarizer: 'client' }), (e: { code: number; message: string }) => {
      assert.equal(e.code, -32141);
      assert.match(e.message, /Picky could not write the summary \(NoPermissions\): The user did not allow it\./);
      return true;
    });
    assert.equal((await messages(s.id)).length, before);
    // Nobody attached a Compact notification to this call: the handler showed its own.
    assert.ok(ui.progress.length === 0 || ui.progress.every((p) => p.title?.includes('summarizing the session with Picky')));
  });
});

describe('chatMessages', () => {
  // The vscode module is the test stub here, whose messages expose their text.
  const stub = (m: unknown) => m as LanguageModelChatMessage;
  const msg = (role: 'user' | 'assistant', text: string, tokens: number, extra: Partial<ContextMessage['content'][0]> = {}): ContextMessage => ({
    role,
    messageID: `msg_${text.slice(0, 6)}`,
    source: 'message',
    content: [{ type: extra.type ?? 'text', text, tokens, ...extra }],
    tokens,
  });

  test('everything that fits is sent in order: system first, roles merged, tools as text, the prompt last', () => {
    const r = chatMessages(
      [
        msg('user', 'goal', 10),
        msg('assistant', '', 20, { type: 'tool', tool: 'read', input: { filePath: '/p/a.ts' }, output: 'file body', text: undefined }),
        msg('assistant', 'read it', 5),
        msg('assistant', 'secret thoughts', 5, { type: 'reasoning' }),
      ],
      'PROMPT',
      1000,
      'SYSTEM',
    );
    assert.equal(r.included, 3, 'the reasoning-only message has nothing to send');
    assert.equal(r.omitted, 0);
    assert.deepEqual(
      r.messages.map((m) => [stub(m).role, stub(m).text]),
      [
        [1, 'SYSTEM\n\ngoal'],
        [2, '[tool read {"filePath":"/p/a.ts"}]\nfile body\n\nread it'],
        [1, 'PROMPT'],
      ],
    );
  });

  test('over budget: the newest messages and the first request are kept, and a note says how many were left out', () => {
    const list = [msg('user', 'first request', 10), msg('assistant', 'old answer', 500), msg('user', 'old ask', 500), msg('assistant', 'new answer', 30), msg('user', 'newest ask', 20)];
    const r = chatMessages(list, 'PROMPT', 60);
    assert.equal(r.included, 3);
    assert.equal(r.omitted, 2);
    const texts = r.messages.map((m) => stub(m).text);
    assert.match(texts[0], /^first request\n\n\[2 earlier message\(s\) of this conversation are left out here/);
    assert.deepEqual(texts.slice(1), ['new answer', 'newest ask\n\nPROMPT']);
  });
});
