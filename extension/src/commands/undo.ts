import path from 'node:path';
import * as vscode from 'vscode';
import { promptTextOf, type FileDiff, type MessageWithParts, type RevertFile } from '../protocol';
import type { PreviewContent } from '../preview';
import { ResponseError } from 'vscode-jsonrpc';
import { command, targetSession, type CommandContext } from '../util';

/** RevertConflict: files the user changed after the AI's step; the server changed nothing. */
export const REVERT_CONFLICT = -32121;

/**
 * Runs session/undo or session/redo. When the server refuses because the user edited a file after the AI's step,
 * says which and offers to overwrite (force) instead of failing.
 */
export async function runWithConflictCheck<T>(title: string, run: (force: boolean) => Promise<T>): Promise<T | undefined> {
  try {
    return await run(false);
  } catch (e) {
    if (!(e instanceof ResponseError) || e.code !== REVERT_CONFLICT) throw e;
    const answer = await vscode.window.showWarningMessage(
      `OpenCode: ${title} would overwrite your own changes.`,
      { modal: true, detail: `${e.message}\n\nNothing has been changed yet.` },
      'Overwrite My Changes',
    );
    if (answer !== 'Overwrite My Changes') return undefined;
    return run(true);
  }
}

/** At most this many diff editors are opened for a preview; the confirmation lists every file. */
const MAX_DIFF_EDITORS = 5;

/**
 * The user message `/undo` goes back to (reference §5.2): the last user message before the current revert point,
 * or the last user message when nothing is reverted.
 */
export function undoTarget(messages: MessageWithParts[], revertMessageID: string | undefined): string | undefined {
  const users = messages.filter((m) => m.info.role === 'user' && (!revertMessageID || m.info.id < revertMessageID));
  return users.at(-1)?.info.id;
}

/**
 * OpenCode: Undo (ctrl+x u). Shows what would change first (session/revert dryRun: the file list, with diffs of
 * the current files against what undo restores in VS Code's diff editor), asks, then runs session/undo and puts
 * the undone prompt on the clipboard so it can be edited and sent again.
 */
export function undo(ctx: CommandContext, previews: PreviewContent) {
  return command('Undo', async (arg?: unknown) => {
    const client = ctx.state.client;
    await client.require('session/undo', 'session/revert', 'message/list');
    const session = await targetSession(ctx, arg);
    const messages = await client.call('message/list', { sessionID: session.id });
    const target = undoTarget(messages, session.revert?.messageID);
    if (!target) {
      void vscode.window.showInformationMessage(`OpenCode: nothing to undo in "${session.title}".`);
      return;
    }
    // A conflict (the user edited a file after the AI's step) already shows in the dry run: ask about it first,
    // and when the user agrees to overwrite, preview and undo with force.
    let force = false;
    const dry = await runWithConflictCheck('Undo', (f) => {
      force = f;
      return client.call('session/revert', { sessionID: session.id, messageID: target, dryRun: true, ...(f ? { force } : {}) });
    });
    if (!dry) return;
    const files = dry.files ?? [];
    if (files.length > 0) await showDiffs(ctx, previews, session.id, target, files);
    const list = files.map((f) => `${f.status}: ${displayPath(ctx, f.path)}`).join('\n');
    const conversationOnly = dry.filesReverted === false && dry.reason ? `Files are not reverted: ${dry.reason}` : undefined;
    const answer = await vscode.window.showWarningMessage(
      `Undo the last turn of "${session.title}"?`,
      {
        modal: true,
        detail:
          conversationOnly ??
          (files.length
            ? `${files.length} file${files.length === 1 ? '' : 's'} will be restored:\n${list}`
            : 'No file changes: only the conversation goes back.'),
      },
      'Undo',
    );
    if (answer !== 'Undo') return;
    const result = await runWithConflictCheck('Undo', (f) =>
      client.call('session/undo', f || force ? { sessionID: session.id, force: true } : { sessionID: session.id }),
    );
    if (!result) return;
    if (result.session) await ctx.state.setCurrent(result.session);
    else await ctx.state.refresh();
    const text = promptTextOf(result);
    if (text) await vscode.env.clipboard.writeText(text);
    const n = (result.files ?? files).length;
    const why = result.filesReverted === false && result.reason ? ` Files were not reverted: ${result.reason}` : '';
    void vscode.window.showInformationMessage(
      `OpenCode: undone${n ? `, ${n} file${n === 1 ? '' : 's'} restored` : ''}.${text ? ' The prompt is on the clipboard.' : ''}${why}`,
    );
  });
}

function displayPath(ctx: CommandContext, p: string): string {
  return path.isAbsolute(p) ? path.relative(ctx.workspaceFolder.fsPath, p) || p : p;
}

async function showDiffs(ctx: CommandContext, previews: PreviewContent, sessionID: string, messageID: string, files: RevertFile[]) {
  const client = ctx.state.client;
  let diffs: FileDiff[] = [];
  if (client.supports('session/diff')) {
    diffs = await client.call('session/diff', { sessionID, messageID }).catch(() => []);
  }
  for (const f of files.slice(0, MAX_DIFF_EDITORS)) {
    const rel = displayPath(ctx, f.path);
    const abs = path.isAbsolute(f.path) ? f.path : path.join(ctx.workspaceFolder.fsPath, f.path);
    const d = diffs.find((x) => x.file === rel || x.file === f.path || path.join(ctx.workspaceFolder.fsPath, x.file) === abs);
    // What the file becomes: the content before the undone turn; an added file goes away (empty).
    const restored = f.status === 'added' ? '' : d?.before;
    if (restored === undefined) continue;
    const now = f.status === 'deleted' ? previews.put(rel + ' (deleted)', '') : vscode.Uri.file(abs);
    await vscode.commands.executeCommand(
      'vscode.diff',
      now,
      previews.put(rel, restored),
      `${rel}: now ↔ after undo`,
      { preview: false, preserveFocus: true },
    );
  }
}
