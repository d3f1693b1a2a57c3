import * as vscode from 'vscode';
import type { SessionState } from '../state';

/** The current session's title in the status bar; a click opens Switch Session. */
export function createStatusBar(state: SessionState): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('opencodeRpc.session', vscode.StatusBarAlignment.Left, 50);
  item.name = 'OpenCode Session';
  item.command = 'opencodeRpc.switchSession';
  const update = () => {
    const s = state.current;
    item.text = `$(comment-discussion) ${s ? s.title : 'OpenCode: no session'}`;
    item.tooltip = s ? `OpenCode session ${s.id}: click to switch` : 'OpenCode: click to pick a session';
    item.show();
  };
  update();
  const sub = state.onDidChange(update);
  return { dispose: () => (sub.dispose(), item.dispose()) };
}
