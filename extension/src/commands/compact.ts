import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc';
import { summarizerSetting } from '../summarize';
import { command, isCancelled, targetSession, type CommandContext } from '../util';

/** The server's SummarizerFailed error code (protocol: session/compact errors). */
const SUMMARIZER_FAILED = -32141;

/**
 * OpenCode: Compact Session (ctrl+x c). Runs with a cancellable progress notification; cancelling sends
 * `$/cancelRequest`, and the server stops without writing a half compaction (and cancels its own
 * `compaction/summarize` request to us, which stops the editor's model). With `opencodeRpc.summarizer` = `vscode`
 * the summary is written by a VS Code language model (the server's `client` summarizer, see ../summarize.ts); when
 * that fails the server writes nothing, and we offer the offline summarizer instead.
 */
export function compact(ctx: CommandContext) {
  return command('Compact Session', async (arg?: unknown) => {
    const client = ctx.state.client;
    await client.require('session/compact');
    const session = await targetSession(ctx, arg);
    let summarizer: 'client' | 'offline' | undefined = summarizerSetting() === 'vscode' ? 'client' : undefined;
    for (;;) {
      try {
        const done = await run(ctx, session.id, session.title, summarizer);
        await ctx.state.refresh();
        void vscode.window.showInformationMessage(done ? `OpenCode: compacted "${session.title}".` : 'OpenCode: compaction cancelled.');
        return;
      } catch (e) {
        if (summarizer !== 'client' || !(e instanceof ResponseError) || e.code !== SUMMARIZER_FAILED) throw e;
        const choice = await vscode.window.showErrorMessage(`OpenCode: Compact Session failed: ${e.message}`, 'Compact Offline');
        if (choice !== 'Compact Offline') return;
        summarizer = 'offline';
      }
    }
  });
}

async function run(ctx: CommandContext, sessionID: string, title: string, summarizer: 'client' | 'offline' | undefined): Promise<boolean> {
  const client = ctx.state.client;
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `OpenCode: compacting "${title}"…`, cancellable: true },
    async (progress, token) => {
      // The editor's model reports into this notification instead of opening a second one.
      const attached = summarizer === 'client' ? ctx.summaries?.attach(sessionID, progress) : undefined;
      try {
        await client.call('session/compact', { sessionID, ...(summarizer ? { summarizer } : {}) }, token);
        return true;
      } catch (e) {
        if (isCancelled(e) || token.isCancellationRequested) return false;
        throw e;
      } finally {
        attached?.dispose();
      }
    },
  );
}
