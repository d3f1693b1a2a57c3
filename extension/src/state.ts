// The current session of this workspace and a change signal for the views. The current session's id is kept in
// the workspace state, so a window reload comes back to the same session.
import * as vscode from 'vscode';
import type { SessionInfo } from './protocol';
import type { Sidecar } from './sidecar';

const KEY = 'opencodeRpc.currentSession';

/** The notifications that can change the session list: a title, an order (time.updated), a parent, a session. */
const LIST_EVENTS = new Set(['session.created', 'session.updated', 'session.deleted']);

export class SessionState implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly sessionsChanged = new vscode.EventEmitter<void>();
  private session: SessionInfo | undefined;
  private readonly subs: { dispose(): void }[] = [];

  /** Fires when the current session or any session changes (server notifications included). */
  readonly onDidChange = this.changed.event;

  /**
   * Fires when the list of sessions may have changed: one of LIST_EVENTS (a new message moves its session's
   * time.updated, which comes as session.updated), a new current session, or a server
   * (re)start. Not for message.* notifications: an agent streaming parts sends dozens a second, and none of them
   * changes a title, an order or a parent.
   */
  readonly onDidChangeSessions = this.sessionsChanged.event;

  constructor(
    readonly client: Sidecar,
    private readonly memento: vscode.Memento,
  ) {
    this.subs.push(
      client.onNotification((method, params) => this.onNotification(method, params)),
      client.onStarted(() => this.fireAll()),
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
    this.fireAll();
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
    this.fireAll();
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
    if (LIST_EVENTS.has(method)) this.sessionsChanged.fire();
  }

  /** A new current session or a (re)started server: the list may differ as well as the current session. */
  private fireAll(): void {
    this.changed.fire();
    this.sessionsChanged.fire();
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.changed.dispose();
    this.sessionsChanged.dispose();
  }
}
