// Read-only documents for diff previews: `opencode-rpc-preview:/<path>?<key>` shows text kept in memory.
import * as vscode from 'vscode';

export const PREVIEW_SCHEME = 'opencode-rpc-preview';

export class PreviewContent implements vscode.TextDocumentContentProvider {
  private readonly docs = new Map<string, string>();
  private seq = 0;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.docs.get(uri.query) ?? '';
  }

  /** A URI whose document shows `text`; the path keeps the file name so the editor picks the right language. */
  put(filePath: string, text: string): vscode.Uri {
    const key = String(++this.seq);
    this.docs.set(key, text);
    return vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: filePath.startsWith('/') ? filePath : '/' + filePath, query: key });
  }
}
