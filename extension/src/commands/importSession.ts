import * as vscode from 'vscode';
import { importedSessionId } from '../protocol';
import { command, type CommandContext } from '../util';

/** The share-link form the server accepts (issue 4): `<base>/share/<slug>`. */
export const SHARE_LINK = /^https?:\/\/[^/]+\/share\/[a-zA-Z0-9_-]+$/;

/** OpenCode: Import Session: an OpenCode JSON export picked in a file dialog, or a share link typed in. */
export function importSession(ctx: CommandContext) {
  return command('Import Session', async () => {
    const client = ctx.state.client;
    await client.require('session/import');
    const source = await vscode.window.showQuickPick(
      [
        { label: 'From a file…', description: 'an OpenCode JSON export', source: 'file' as const },
        { label: 'From a share link…', description: 'https://…/share/<id>', source: 'url' as const },
      ],
      { title: 'OpenCode: Import Session', placeHolder: 'Import from' },
    );
    if (!source) return;
    let params: { path: string } | { url: string };
    if (source.source === 'file') {
      const files = await vscode.window.showOpenDialog({
        title: 'OpenCode: Import Session',
        canSelectMany: false,
        defaultUri: ctx.workspaceFolder,
        filters: { JSON: ['json'] },
      });
      if (!files?.[0]) return;
      params = { path: files[0].fsPath };
    } else {
      const url = await vscode.window.showInputBox({
        title: 'OpenCode: Import Session',
        prompt: 'Share link',
        placeHolder: 'https://opncd.ai/share/abc123',
        validateInput: (v) => (SHARE_LINK.test(v.trim()) ? undefined : 'Expected a link of the form <base>/share/<id>'),
      });
      if (!url) return;
      params = { url: url.trim() };
    }
    const result = await client.call('session/import', params);
    const id = importedSessionId(result);
    if (id) await ctx.state.setCurrent(await client.call('session/get', { sessionID: id }));
    const counts = typeof result.messages === 'number' ? ` (${result.messages} messages, ${result.parts ?? 0} parts)` : '';
    void vscode.window.showInformationMessage(`OpenCode: imported session ${id ?? '(unknown id)'}${counts}`);
  });
}
