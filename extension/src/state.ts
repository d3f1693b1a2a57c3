// The current session of this workspace and a change signal for the views. The current session's id is kept in
// the workspace state, so a window reload comes back to the same session.
import * as vscode from 'vscode';
import type { SessionInfo } from './protocol';
import type { Sidecar } from './sidecar';

const KEY = 'opencodeRpc.currentSession';

export class SessionState implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  private session: SessionInfo | undefined;
  private readonly subs: { dispose(): void }[] = [];

  /** Fires when the current session or any session changes (server notifications included). */
  readonly onDidChange = this.changed.event;

  constructor(
    readonly client: Sidecar,
    private readonly memento: vscode.Memento,
  ) {
    this.subs.push(
      client.onNotification((method, params) => this.onNotification(method, params)),
      client.onStarted(() => this.changed.fire()),
    );
  }

  get currentId(): string | undefined {
    return this.session?.id ?? this.memento.get<string>(KEY);
  }

  get current(): SessionInfo | undefined {
    return this.session;
  }

  async setCurrent(session: SessionInfo | undefined): Promise<void> {
    this.session = session;
    await this.memento.update(KEY, session?.id);
    this.changed.fire();
  }

  /** Re-reads the current session from the server (after a reload, or when a notification may have changed it). */
  async refresh(): Promise<SessionInfo | undefined> {
    const id = this.currentId;
    if (!id) return undefined;
    try {
      this.session = await this.client.call('session/get', { sessionID: id });
    } catch {
      // Deleted in the meantime, or the server is down: forget it rather than show a stale title.
      this.session = undefined;
      await this.memento.update(KEY, undefined);
    }
    this.changed.fire();
    return this.session;
  }

  private onNotification(method: string, params: unknown): void {
    if (!method.startsWith('session.') && !method.startsWith('message.')) return;
    const info = (params as { info?: SessionInfo } | undefined)?.info;
    if (this.session && info?.id === this.session.id && info.role === undefined) {
      if (method === 'session.deleted') {
        this.session = undefined;
        void this.memento.update(KEY, undefined);
      } else {
        this.session = info;
      }
    }
    this.changed.fire();
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.changed.dispose();
  }
}
