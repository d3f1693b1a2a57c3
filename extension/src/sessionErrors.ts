// session.error: something failed in a session outside any request's answer. Today that is an automatic compaction
// (the server tries one when an assistant message overflows the model's context): the write that triggered it
// succeeded, so nothing else would tell the user the session is still over its context.
import * as vscode from 'vscode';
import type { SessionErrorNotificationParams } from './protocol.generated';
import type { Sidecar } from './sidecar';
import type { SessionState } from './state';

export function watchSessionErrors(client: Sidecar, state: SessionState): vscode.Disposable {
  return client.onNotification((method, params) => {
    if (method !== 'session.error') return;
    const p = params as Partial<SessionErrorNotificationParams> | undefined;
    const message = p?.error?.data?.message ?? p?.error?.name ?? 'an unknown error';
    const current = state.current;
    const which = current && current.id === p?.sessionID ? `"${current.title}"` : (p?.sessionID ?? 'a session');
    void vscode.window.showWarningMessage(`OpenCode: ${which}: ${message}`);
  });
}
