import * as vscode from 'vscode';
import { command, isCancelled, targetSession, type CommandContext } from '../util';

/** OpenCode: Compact Session (ctrl+x c). Runs with a cancellable progress notification; cancelling sends
 * `$/cancelRequest`, and the server stops without writing a half compaction. */
export function compact(ctx: CommandContext) {
  return command('Compact Session', async (arg?: unknown) => {
    const client = ctx.state.client;
    await client.require('session/compact');
    const session = await targetSession(ctx, arg);
    const done = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `OpenCode: compacting "${session.title}"…`, cancellable: true },
      async (_progress, token) => {
        try {
          await client.call('session/compact', { sessionID: session.id }, token);
          return true;
        } catch (e) {
          if (isCancelled(e) || token.isCancellationRequested) return false;
          throw e;
        }
      },
    );
    await ctx.state.refresh();
    void vscode.window.showInformationMessage(done ? `OpenCode: compacted "${session.title}".` : 'OpenCode: compaction cancelled.');
  });
}
