/**
 * What the Kubernetes-API store's tests share: a store on the test API server in a namespace of
 * its own, and a real client whose writes a test can interleave with another daemon's or fail
 * the way a network does (every request still goes to the real API server unless it fails).
 */
import { join } from "node:path";
import { KubeClient } from "../../src/kube/client.ts";
import { KubeConnectionError } from "../../src/kube/errors.ts";
import { IPAMBlocks, Namespaces, type ObjectOf, type ResourceType } from "../../src/kube/resources.ts";
import type { WatchEvent, WatchOptions } from "../../src/kube/watch.ts";
import type { IPAMBlock } from "../../src/kube/schemas/store.ts";
import { KubeStore } from "../../src/store/kube.ts";
import { tempDir } from "../e2e/harness.ts";
import { uniqueName } from "../kube/helpers.ts";

const dir = tempDir("ipamd-kube-store-");
export const PREFIXES = { v4: 26, v6: 122 };

export async function freshNamespace(client: KubeClient): Promise<string> {
  const namespace = uniqueName("store");
  await client.create(Namespaces, { metadata: { name: namespace } });
  return namespace;
}

export function openStore(client: KubeClient, namespace: string, node = "", db = join(dir, `${uniqueName(namespace)}.db`)): Promise<KubeStore> {
  return KubeStore.open({ client, namespace, node, db, blockPrefixes: PREFIXES });
}

/** A store that keeps what it reports of the blocks it cannot read, as "name: what is wrong". */
export async function openReportingStore(client: KubeClient, namespace: string, node: string): Promise<{ store: KubeStore; reported: string[] }> {
  const reported: string[] = [];
  const store = await KubeStore.open({ client, namespace, node, db: join(dir, `${uniqueName(namespace)}.db`), blockPrefixes: PREFIXES, onInvalidBlock: (i) => reported.push(`${i.name}: ${i.message}`) });
  return { store, reported };
}

/** Every IPAMBlock of a namespace, as the API server has it. */
export async function storedBlocks(client: KubeClient, namespace: string): Promise<IPAMBlock[]> {
  return (await client.list(IPAMBlocks, { namespace })).items;
}

type Hook = (name: string) => Promise<void> | void;

/** A real client with hooks around its writes, and a switch that makes it a client of a dead server. */
export class HookedClient extends KubeClient {
  /** Runs before a create or update of the named object; may throw (the write is then not sent). */
  before: Hook | undefined;
  /** Runs after a write was answered; may throw (the answer is then lost, the write stands). */
  after: Hook | undefined;
  /** While set, a write's answer is kept from the caller until this resolves, as a slow answer would be (the watch still shows the write). */
  holdAnswers: Promise<void> | undefined;
  /** As if the process were gone: no request goes out, and the watch shows nothing more. */
  dead = false;

  /** The write, whose answer reaches the caller (its `known` hook too) only once the hooks let it through. */
  private async around<T, O extends { known?: (answer: unknown) => T | undefined }>(name: string, options: O | undefined, write: (options: O) => Promise<T>): Promise<T> {
    if (this.dead) throw new KubeConnectionError(`${name}: connection refused (test)`);
    await this.before?.(name);
    let sent: unknown;
    const parsed = await write({ ...options, known: (answer: unknown) => void (sent = answer) } as O);
    await this.holdAnswers;
    await this.after?.(name);
    return options?.known?.(sent) ?? parsed;
  }

  override get<R extends Parameters<KubeClient["get"]>[0]>(...args: [R, string, { namespace?: string }?]) {
    if (this.dead) return Promise.reject(new KubeConnectionError("get: connection refused (test)"));
    return super.get(...args);
  }

  override create: KubeClient["create"] = (type, object, options) => this.around(object.metadata.name ?? "", options, (o) => super.create(type, object, o));
  override update: KubeClient["update"] = (type, object, options) => this.around(object.metadata.name ?? "", options, (o) => super.update(type, object, o));

  override watch<R extends ResourceType>(type: R, options: WatchOptions<ObjectOf<R>> = {}): AsyncGenerator<WatchEvent<ObjectOf<R>>> {
    const { known, take } = options;
    const events = super.watch(type, {
      ...options,
      known: known && ((key, version, object) => (this.dead ? undefined : known(key, version, object))),
      take: take && ((key, version, object) => !this.dead && take(key, version, object)),
    });
    const client = this;
    return (async function* () {
      for await (const event of events) if (!client.dead) yield event;
    })();
  }
}
