/**
 * Wicket's TypeScript SDK: an admission plugin is one `review` function.
 *
 * The same shapes as the Rust SDK (`plugins/sdk`) over the same WIT contract
 * (`wit/0.2`):
 *
 * ```ts
 * import { Review, Verdict, definePlugin } from "wicket";
 *
 * export const plugin = definePlugin({
 *   review(review: Review): Verdict {
 *     if (!review.object) return Verdict.allow(); // a delete
 *     if ("owner" in review.object.labels) return Verdict.allow();
 *     return Verdict.deny("pods need an 'owner' label");
 *   },
 * });
 * ```
 *
 * Objects stay in Wicket: a {@link View} reads only the parts it is asked
 * for, through the host. Build with `scripts/build-js-plugin DIR OUT.wasm`.
 */

import { log as hostLog } from "wicket:admission/log@0.2.1";

/** A JSON document held by Wicket (WIT `document`). */
export interface Document {
  get(pointer: string): string | undefined;
  part(pointer: string, inlineBytes: number): object | undefined;
  keys(pointer: string): string[] | undefined;
  len(pointer: string): number | undefined;
}

/** The request's attributes (WIT `request`). */
export interface Request {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  name: string;
  namespace: string;
  operation: "create" | "update" | "delete" | "connect";
  userInfo: { username: string; uid: string; groups: string[] };
  dryRun: boolean;
}

/** The request's documents (WIT `documents`). */
export interface Documents {
  object?: Document;
  oldObject?: Document;
  options?: Document;
  settings: Document;
}

/** JSON values as parsed. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The plugin cannot judge this review (its own failure, not a denial):
 * Wicket applies the manifest's failure policy. */
export class PluginError extends Error {}

/** A JSON pointer (RFC 6901) to `segments`, escaped:
 * `pointer("metadata", "labels", "app.kubernetes.io/name")`. */
export function pointer(...segments: string[]): string {
  return segments.map((s) => "/" + s.replaceAll("~", "~0").replaceAll("/", "~1")).join("");
}

/** A lazy, read-only view of one JSON document held by Wicket, at `at` (a
 * JSON pointer). Each read crosses into the host once and parses only what
 * it returns. */
export class View {
  constructor(
    private readonly document: Document,
    private readonly at: string = "",
  ) {}

  /** The JSON value at `path` (relative to this view), or `fallback`. */
  get<T = Json>(path = "", fallback?: T): T | undefined {
    const text = this.document.get(this.at + path);
    return text === undefined ? fallback : (JSON.parse(text) as T);
  }

  /** Whether `path` exists. */
  has(path: string): boolean {
    return this.document.part(this.at + path, 0) !== undefined;
  }

  /** The view of the value at `path`. */
  view(path: string): View {
    return new View(this.document, this.at + path);
  }

  /** The member names of the object at `path` (empty if it is not one). */
  keys(path = ""): string[] {
    return this.document.keys(this.at + path) ?? [];
  }

  /** The length of the array or object at `path` (0 if absent). */
  len(path = ""): number {
    return this.document.len(this.at + path) ?? 0;
  }

  get name(): string {
    return this.get<string>("/metadata/name", "") ?? "";
  }

  get namespace(): string {
    return this.get<string>("/metadata/namespace", "") ?? "";
  }

  /** `metadata.labels` (empty when there are none). */
  get labels(): Record<string, string> {
    return this.get<Record<string, string>>("/metadata/labels") ?? {};
  }

  /** `metadata.annotations` (empty when there are none). */
  get annotations(): Record<string, string> {
    return this.get<Record<string, string>>("/metadata/annotations") ?? {};
  }

  /** Every init, ordinary and ephemeral container of the pod spec at `spec`
   * (`/spec/template/spec` for a Deployment), in order. */
  *containers(spec = "/spec"): Generator<Container> {
    for (const field of ["initContainers", "containers", "ephemeralContainers"] as const) {
      const list = `${spec}/${field}`;
      for (let index = 0; index < this.len(list); index++) {
        yield new Container(this.document, `${this.at}${list}/${index}`, field);
      }
    }
  }
}

/** One container of a pod spec: its fields are read on demand. */
export class Container extends View {
  constructor(
    document: Document,
    /** Its JSON pointer in the object, for a patch. */
    readonly path: string,
    /** `containers`, `initContainers` or `ephemeralContainers`. */
    readonly field: "initContainers" | "containers" | "ephemeralContainers",
  ) {
    super(document, path);
  }

  get containerName(): string {
    return this.get<string>("/name", "") ?? "";
  }

  get image(): string {
    return this.get<string>("/image", "") ?? "";
  }
}

/** One admission request: its attributes, and views of its documents. */
export class Review {
  /** The object being admitted (absent for a delete). */
  readonly object?: View;
  /** The stored object (updates and deletes). */
  readonly oldObject?: View;
  /** The operation's options (`CreateOptions`, ...). */
  readonly options?: View;

  constructor(
    readonly request: Request,
    documents: Documents,
  ) {
    this.object = documents.object && new View(documents.object);
    this.oldObject = documents.oldObject && new View(documents.oldObject);
    this.options = documents.options && new View(documents.options);
  }

  get uid(): string {
    return this.request.uid;
  }

  /** `CREATE`, `UPDATE`, `DELETE` or `CONNECT`. */
  get operation(): string {
    return this.request.operation.toUpperCase();
  }

  get kind(): string {
    return this.request.kind.kind;
  }

  get name(): string {
    return this.request.name;
  }

  get namespace(): string {
    return this.request.namespace;
  }
}

type Op =
  | { op: "add" | "replace"; path: string; value: unknown }
  | { op: "remove"; path: string };

/** A JSON Patch (RFC 6902) built op by op. Paths are JSON pointers; build
 * them with {@link pointer} when a segment may hold `/` or `~`. */
export class Patch {
  readonly ops: Op[] = [];

  add(path: string, value: unknown): this {
    this.ops.push({ op: "add", path, value });
    return this;
  }

  replace(path: string, value: unknown): this {
    this.ops.push({ op: "replace", path, value });
    return this;
  }

  remove(path: string): this {
    this.ops.push({ op: "remove", path });
    return this;
  }

  get isEmpty(): boolean {
    return this.ops.length === 0;
  }

  toJSON(): Op[] {
    return this.ops;
  }
}

/** What the plugin answers: allow (optionally with a patch) or deny, with
 * warnings for the client and audit annotations for the API server's log. */
export class Verdict {
  private patchOps?: Patch;
  private readonly warnings: string[] = [];
  private readonly annotations: [string, string][] = [];

  private constructor(private readonly denied?: { code: number; message: string }) {}

  static allow(): Verdict {
    return new Verdict();
  }

  /** Refuses the object with `message` (shown to the client) and HTTP
   * `code` (403 unless told). */
  static deny(message: string, code = 403): Verdict {
    return new Verdict({ code, message });
  }

  /** Allows the object changed by `patch` (mutating plugins). */
  static patch(patch: Patch): Verdict {
    const verdict = new Verdict();
    verdict.patchOps = patch;
    return verdict;
  }

  warn(message: string): this {
    this.warnings.push(message);
    return this;
  }

  annotate(key: string, value: string): this {
    this.annotations.push([key, value]);
    return this;
  }

  /** The WIT `response`. */
  toResponse(): object {
    return {
      denied: this.denied,
      mutation:
        this.patchOps && !this.patchOps.isEmpty
          ? { tag: "json-patch", val: JSON.stringify(this.patchOps) }
          : undefined,
      warnings: this.warnings,
      auditAnnotations: this.annotations,
    };
  }
}

export const debug = (message: string) => hostLog("debug", message);
export const info = (message: string) => hostLog("info", message);
export const warn = (message: string) => hostLog("warn", message);
export const error = (message: string) => hostLog("error", message);

/** What a plugin defines: `review` and, optionally, `validateSettings`. */
export interface Definition<Settings> {
  /** Judges one review; `settings` is the manifest's `[settings]` table. */
  review(review: Review, settings: Settings): Verdict;
  /** Runs when the plugin is loaded; throws an `Error` to refuse bad
   * settings, with its message as the reason. */
  validateSettings?(settings: Settings): void;
}

/** The object a plugin module exports as `plugin` (WIT `plugin`).
 * Throw {@link PluginError} when the plugin cannot judge; componentize-js
 * turns any other exception into the same failure, with its message. */
export function definePlugin<Settings = Record<string, Json>>(definition: Definition<Settings>) {
  return {
    validateSettings(settings: Document): void {
      try {
        definition.validateSettings?.(new View(settings).get<Settings>("", {} as Settings)!);
      } catch (refusal) {
        throw refusal instanceof Error ? refusal.message : String(refusal);
      }
    },
    review(request: Request, documents: Documents): object {
      const settings = new View(documents.settings).get<Settings>("", {} as Settings)!;
      try {
        return definition.review(new Review(request, documents), settings).toResponse();
      } catch (failure) {
        throw { message: failure instanceof Error ? failure.message : String(failure) };
      }
    },
  };
}
