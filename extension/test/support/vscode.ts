// A small stand-in for the `vscode` module, enough for the extension's commands and views. The unit tests are
// bundled with `vscode` aliased to this file. UI calls (input boxes, pickers, modal confirmations, dialogs) take their
// answers from a queue the test fills with `ui.answer(kind, fn)`; every message shown is recorded in `ui.messages`.
import fs from 'node:fs';
import path from 'node:path';

// ---- scripted UI ---------------------------------------------------------------------------------------------

export type UiKind = 'inputBox' | 'quickPick' | 'createQuickPick' | 'confirm' | 'saveDialog' | 'openDialog' | 'progress';

export interface Message {
  level: 'info' | 'warning' | 'error';
  text: string;
  modal: boolean;
  detail?: string;
  items: string[];
}

type Answer = { kind: UiKind; fn: (...args: any[]) => unknown };

export const ui = {
  queue: [] as Answer[],
  messages: [] as Message[],
  executed: [] as { command: string; args: unknown[] }[],
  shown: [] as string[],
  /** Every progress.report() of a withProgress task, with the task's title. */
  progress: [] as { title?: string; message?: string }[],
  clipboard: '',
  /** Queues the answer to the next UI call of this kind. The function gets what the command passed and returns the
   * user's answer (undefined = Escape). */
  answer(kind: UiKind, fn: (...args: any[]) => unknown) {
    this.queue.push({ kind, fn });
  },
  next(kind: UiKind): Answer['fn'] {
    const a = this.queue.shift();
    if (!a) throw new Error(`UI: the command asked for a ${kind} but the test queued no answer`);
    if (a.kind !== kind) throw new Error(`UI: the command asked for a ${kind} but the next queued answer is for a ${a.kind}`);
    return a.fn;
  },
  reset() {
    this.queue = [];
    this.messages = [];
    this.executed = [];
    this.shown = [];
    this.progress = [];
    this.clipboard = '';
  },
  /** Messages of one level, text only. */
  texts(level?: Message['level']): string[] {
    return this.messages.filter((m) => !level || m.level === level).map((m) => m.text);
  },
};

// ---- basic types ---------------------------------------------------------------------------------------------

export class Disposable {
  constructor(private readonly fn: () => void = () => undefined) {}
  static from(...d: { dispose(): unknown }[]) {
    return new Disposable(() => d.forEach((x) => x.dispose()));
  }
  dispose() {
    this.fn();
  }
}

export class EventEmitter<T> {
  private listeners = new Set<(e: T) => unknown>();
  event = (listener: (e: T) => unknown) => {
    this.listeners.add(listener);
    return new Disposable(() => this.listeners.delete(listener));
  };
  fire(e: T) {
    for (const l of [...this.listeners]) l(e);
  }
  dispose() {
    this.listeners.clear();
  }
}

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  token = {
    isCancellationRequested: false,
    onCancellationRequested: this.emitter.event,
  };
  cancel() {
    if (this.token.isCancellationRequested) return;
    this.token.isCancellationRequested = true;
    this.emitter.fire();
  }
  dispose() {
    this.emitter.dispose();
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly path: string,
    readonly query = '',
  ) {}
  static file(p: string) {
    return new Uri('file', path.resolve(p));
  }
  static from(c: { scheme: string; path?: string; query?: string }) {
    return new Uri(c.scheme, c.path ?? '', c.query ?? '');
  }
  static parse(s: string) {
    const m = /^([a-z][a-z0-9+.-]*):(?:\/\/)?([^?]*)(?:\?(.*))?$/i.exec(s);
    if (!m) throw new Error(`bad uri ${s}`);
    return new Uri(m[1], m[2], m[3] ?? '');
  }
  static joinPath(base: Uri, ...segments: string[]) {
    return new Uri(base.scheme, path.posix.join(base.path, ...segments), base.query);
  }
  get fsPath() {
    return this.path;
  }
  toString() {
    return `${this.scheme}://${this.path}${this.query ? '?' + this.query : ''}`;
  }
}

export class ThemeIcon {
  constructor(readonly id: string) {}
}

export enum TreeItemCollapsibleState {
  None = 0,
  Collapsed = 1,
  Expanded = 2,
}

export class TreeItem {
  id?: string;
  description?: string;
  tooltip?: string;
  iconPath?: ThemeIcon;
  contextValue?: string;
  command?: { command: string; title: string; arguments?: unknown[] };
  constructor(
    readonly label: string,
    readonly collapsibleState: TreeItemCollapsibleState = TreeItemCollapsibleState.None,
  ) {}
}

export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export enum QuickPickItemKind {
  Separator = -1,
  Default = 0,
}

// ---- window --------------------------------------------------------------------------------------------------

function message(level: Message['level']) {
  return async (text: string, ...rest: unknown[]) => {
    const opts = rest[0] && typeof rest[0] === 'object' ? (rest.shift() as { modal?: boolean; detail?: string }) : {};
    const items = rest as string[];
    ui.messages.push({ level, text, modal: !!opts.modal, detail: opts.detail, items });
    // A modal dialog always waits for the user; a toast's buttons are answered only when the test queued one.
    if (opts.modal || (items.length > 0 && ui.queue[0]?.kind === 'confirm')) {
      return ui.next('confirm')({ text, detail: opts.detail, items });
    }
    return undefined;
  };
}

/** The createQuickPick object; the test's answer function drives it (see the helpers). */
export class StubQuickPick<T extends { label: string }> {
  title?: string;
  placeholder?: string;
  matchOnDescription = false;
  busy = false;
  items: readonly T[] = [];
  buttons: readonly { iconPath: ThemeIcon; tooltip?: string }[] = [];
  selectedItems: readonly T[] = [];
  private readonly accept = new EventEmitter<void>();
  private readonly hideE = new EventEmitter<void>();
  private readonly button = new EventEmitter<unknown>();
  onDidAccept = this.accept.event;
  onDidHide = this.hideE.event;
  onDidTriggerButton = this.button.event;
  visible = false;
  show() {
    this.visible = true;
    const fn = ui.next('createQuickPick');
    void Promise.resolve().then(() => fn(this));
  }
  hide() {
    if (!this.visible) return;
    this.visible = false;
    this.hideE.fire();
  }
  dispose() {
    this.visible = false;
  }
  /** Test helpers. */
  async settled() {
    for (let i = 0; i < 500 && this.busy; i++) await new Promise((r) => setTimeout(r, 10));
    return this.items;
  }
  triggerButton(i = 0) {
    this.button.fire(this.buttons[i]);
  }
  pick(label: string) {
    const item = this.items.find((x) => x.label === label);
    if (!item) throw new Error(`QuickPick has no item "${label}": ${this.items.map((x) => x.label).join(', ')}`);
    this.selectedItems = [item];
    this.accept.fire();
  }
}

const outputs = new Map<string, { name: string; text: string }>();

export const window = {
  showInformationMessage: message('info'),
  showWarningMessage: message('warning'),
  showErrorMessage: message('error'),
  async showInputBox(opts: { value?: string; validateInput?: (v: string) => unknown }) {
    const v = (await ui.next('inputBox')(opts)) as string | undefined;
    if (v !== undefined && opts.validateInput) {
      const err = await opts.validateInput(v);
      if (err) throw new Error(`input "${v}" failed validation: ${err}`);
    }
    return v;
  },
  async showQuickPick<T extends { label: string }>(items: T[] | Promise<T[]>, opts?: unknown) {
    const list = await items;
    const a = await ui.next('quickPick')(list, opts);
    if (typeof a === 'string') {
      const item = list.find((x) => x.label === a);
      if (!item) throw new Error(`QuickPick has no item "${a}": ${list.map((x) => x.label).join(', ')}`);
      return item;
    }
    return a as T | undefined;
  },
  createQuickPick<T extends { label: string }>() {
    return new StubQuickPick<T>();
  },
  async showSaveDialog(opts: unknown) {
    return ui.next('saveDialog')(opts) as Uri | undefined;
  },
  async showOpenDialog(opts: unknown) {
    return ui.next('openDialog')(opts) as Uri[] | undefined;
  },
  async withProgress<R>(opts: unknown, task: (progress: { report(v: unknown): void }, token: CancellationTokenSource['token']) => Promise<R>) {
    const cts = new CancellationTokenSource();
    const hook = ui.queue[0]?.kind === 'progress' ? ui.next('progress') : undefined;
    const title = (opts as { title?: string } | undefined)?.title;
    const p = task({ report: (v: { message?: string }) => void ui.progress.push({ title, message: v?.message }) }, cts.token);
    if (hook) await hook(cts, opts);
    return p;
  },
  createOutputChannel(name: string) {
    const o = { name, text: '' };
    outputs.set(name, o);
    return {
      name,
      append: (s: string) => void (o.text += s),
      appendLine: (s: string) => void (o.text += s + '\n'),
      show: () => undefined,
      clear: () => void (o.text = ''),
      dispose: () => undefined,
    };
  },
  createStatusBarItem(id?: string) {
    const item = { id, text: '', tooltip: '', name: '', command: '', visible: false, show: () => void (item.visible = true), hide: () => void (item.visible = false), dispose: () => undefined };
    statusBarItems.push(item);
    return item;
  },
  createTreeView<T>(id: string, opts: { treeDataProvider: unknown }) {
    const v = { id, provider: opts.treeDataProvider, visible: true, selection: [] as T[], dispose: () => undefined };
    treeViews.set(id, v);
    return v;
  },
  async showTextDocument(uri: Uri) {
    ui.shown.push(uri.fsPath);
    return {};
  },
};

export const statusBarItems: { id?: string; text: string; command: string; visible: boolean }[] = [];
export const treeViews = new Map<string, { provider: unknown; selection: unknown[]; visible: boolean }>();

// ---- workspace, commands, env ----------------------------------------------------------------------------------

export const testConfig: Record<string, unknown> = {};

export const workspace = {
  workspaceFolders: undefined as { uri: Uri; name: string; index: number }[] | undefined,
  fs: {
    async writeFile(uri: Uri, data: Uint8Array) {
      fs.mkdirSync(path.dirname(uri.fsPath), { recursive: true });
      fs.writeFileSync(uri.fsPath, data);
    },
    async readFile(uri: Uri) {
      return fs.readFileSync(uri.fsPath);
    },
  },
  getConfiguration(section: string) {
    return { get: <T>(key: string, dflt?: T) => (testConfig[`${section}.${key}`] as T | undefined) ?? dflt };
  },
  asRelativePath(uri: Uri | string) {
    const p = typeof uri === 'string' ? uri : uri.fsPath;
    const root = workspace.workspaceFolders?.[0]?.uri.fsPath;
    return root && p.startsWith(root + '/') ? p.slice(root.length + 1) : p;
  },
  registerTextDocumentContentProvider(_scheme: string, provider: unknown) {
    contentProviders.push(provider);
    return new Disposable();
  },
  onDidChangeConfiguration: new EventEmitter<unknown>().event,
};

export const contentProviders: unknown[] = [];
const registered = new Map<string, (...args: any[]) => unknown>();

export const commands = {
  registerCommand(id: string, fn: (...args: any[]) => unknown) {
    registered.set(id, fn);
    return new Disposable(() => registered.delete(id));
  },
  async executeCommand(id: string, ...args: unknown[]) {
    ui.executed.push({ command: id, args });
    return registered.get(id)?.(...args);
  },
};

export const env = {
  clipboard: {
    async writeText(t: string) {
      ui.clipboard = t;
    },
    async readText() {
      return ui.clipboard;
    },
  },
};

export function outputText(name: string): string {
  return outputs.get(name)?.text ?? '';
}

// ---- language models (vscode.lm) -------------------------------------------------------------------------------
// The boundary the summarizer talks to. Tests put their own LanguageModelChat objects in `lm.models`; selectChatModels
// filters them by the selector as VS Code does (every given field must match).

export enum LanguageModelChatMessageRole {
  User = 1,
  Assistant = 2,
}

export class LanguageModelTextPart {
  constructor(readonly value: string) {}
}

export class LanguageModelChatMessage {
  constructor(
    readonly role: LanguageModelChatMessageRole,
    readonly content: LanguageModelTextPart[],
    readonly name?: string,
  ) {}
  static User(content: string, name?: string) {
    return new LanguageModelChatMessage(LanguageModelChatMessageRole.User, [new LanguageModelTextPart(content)], name);
  }
  static Assistant(content: string, name?: string) {
    return new LanguageModelChatMessage(LanguageModelChatMessageRole.Assistant, [new LanguageModelTextPart(content)], name);
  }
  /** Test helper: the message's text. */
  get text() {
    return this.content.map((p) => p.value).join('');
  }
}

export class LanguageModelError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
  static NoPermissions(message = 'no permission') {
    return new LanguageModelError(message, 'NoPermissions');
  }
  static Blocked(message = 'blocked') {
    return new LanguageModelError(message, 'Blocked');
  }
  static NotFound(message = 'not found') {
    return new LanguageModelError(message, 'NotFound');
  }
}

export class CancellationError extends Error {
  constructor() {
    super('Canceled');
  }
}

export interface StubChatModel {
  name: string;
  id: string;
  vendor: string;
  family: string;
  version: string;
  maxInputTokens: number;
  sendRequest(messages: LanguageModelChatMessage[], options?: unknown, token?: CancellationTokenSource['token']): Promise<{ text: AsyncIterable<string>; stream: AsyncIterable<unknown> }>;
  countTokens(text: string | LanguageModelChatMessage, token?: unknown): Promise<number>;
}

export const lm = {
  models: [] as StubChatModel[],
  selectors: [] as unknown[],
  async selectChatModels(selector?: { vendor?: string; family?: string; id?: string; version?: string }) {
    lm.selectors.push(selector);
    const s = selector ?? {};
    return lm.models.filter((m) => (['vendor', 'family', 'id', 'version'] as const).every((k) => s[k] === undefined || s[k] === m[k]));
  },
  onDidChangeChatModels: new EventEmitter<void>().event,
};
