// session.error from the REAL sidecar: an automatic compaction that fails (its summarizer endpoint refuses the
// connection) reaches the user as a warning, while the write that triggered it succeeded.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { agentTurn, ascendingId, createSession, startEnv, until, type Env } from './support/harness';
import { ui } from './support/vscode';

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

let env: Env;
before(async () => {
  env = await startEnv({
    globalConfig: {
      agent: { compaction: { model: 'local/summarizer' } },
      provider: {
        local: { options: { baseURL: `http://127.0.0.1:${await closedPort()}/v1` } },
        test: { models: { 'test-model': { limit: { context: 20_000, output: 1_000 } } } },
      },
    },
  });
});
after(async () => {
  await env.dispose();
});

describe('session.error', () => {
  test('a failed automatic compaction shows a warning naming the session, and the message that triggered it is kept', async () => {
    ui.reset();
    const s = await createSession(env, 'over its context');
    await env.state.setCurrent(s);
    const { userID } = await agentTurn(env, s.id, 'Explain the parser. ' + 'Every detail matters. '.repeat(300));
    // An assistant message that reports more tokens than the model's usable context (20,000 − 1,000).
    const id = ascendingId('msg');
    await env.rpc('message/update', {
      info: {
        id, sessionID: s.id, role: 'assistant', time: { created: Date.now() }, parentID: userID, modelID: 'test-model',
        providerID: 'test', mode: 'build', agent: 'build', path: { cwd: env.project, root: env.project }, cost: 0,
        tokens: { total: 19_500, input: 19_000, output: 500, reasoning: 0, cache: { read: 0, write: 0 } },
      },
    });
    await until('the warning', () => ui.texts('warning').length > 0);
    assert.match(ui.texts('warning')[0], /^OpenCode: "over its context": Automatic compaction failed: /);
    const list = await env.rpc<{ info: { id: string }; parts: { type: string }[] }[]>('message/list', { sessionID: s.id });
    assert.equal(list.at(-1)!.info.id, id, 'the assistant message was written');
    assert.ok(!list.some((m) => m.parts.some((p) => p.type === 'compaction')), 'no compaction was written');
  });
});
