// The slice of Node-RED's node API the adapter uses (no dependency on Node-RED's own types).
export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export type NodeMessage = Record<string, unknown> & { payload?: unknown; _msgid?: string };
export type Send = (msg: NodeMessage | (NodeMessage | NodeMessage[] | null)[] | null) => void;

export interface Node {
  id: string;
  type: string;
  name?: string;
  z?: string;
  credentials?: Record<string, string>;
  on(event: 'input', fn: (msg: NodeMessage, send: Send, done: (err?: Error) => void) => void | Promise<void>): void;
  on(event: 'close', fn: (removed: boolean, done: () => void) => void): void;
  send: Send;
  status(s: NodeStatus | Record<string, never>): void;
  error(err: unknown, msg?: NodeMessage): void;
  warn(msg: unknown): void;
  log(msg: unknown): void;
}

export interface Red {
  nodes: {
    createNode(node: object, config: object): void;
    registerType<T extends Node>(type: string, ctor: (this: T, config: Record<string, unknown>) => void, opts?: { credentials?: Record<string, { type: string }> }): void;
    getNode(id: string): (Node & Record<string, unknown>) | null;
  };
  events: { on(event: string, fn: (e: unknown) => void): void; removeListener(event: string, fn: (e: unknown) => void): void };
  /** Message hooks (Node-RED ≥ 2.0): `onComplete.<label>` runs whenever a node calls done() for a message. */
  hooks?: { add(name: string, fn: (event: CompleteEvent) => void): void; remove(name: string): void };
  settings: Record<string, unknown> & { userDir?: string; httpNodeRoot?: string; uiPort?: number };
  httpNode?: { use(path: string, fn: (req: unknown, res: unknown, next: () => void) => void): void };
  httpAdmin?: AdminRouter;
  auth?: { needsPermission(permission: string): Handler };
  _(key: string, subs?: Record<string, unknown>): string;
}

export interface CompleteEvent {
  msg: NodeMessage;
  error?: unknown;
  node: { id: string; node?: { type?: string } };
}

export interface AdminRequest {
  body?: unknown;
  query?: Record<string, string | undefined>;
}
export interface AdminResponse {
  status(code: number): AdminResponse;
  json(body: unknown): void;
}
export type Handler = (req: AdminRequest, res: AdminResponse, next: (err?: unknown) => void) => void;
export interface AdminRouter {
  get(path: string, ...handlers: Handler[]): void;
  post(path: string, ...handlers: Handler[]): void;
}
