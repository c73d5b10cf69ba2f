/**
 * The Store contract on a real kube-apiserver (one per file, with the store's CRDs): each store
 * of the suite gets a namespace of its own (the store's objects live in one namespace, as the
 * etcd store's keys live under one prefix) and a local database of its own.
 */
import { afterAll, beforeAll } from "bun:test";
import { join } from "node:path";
import type { KubeClient } from "../../src/kube/client.ts";
import { Namespaces } from "../../src/kube/resources.ts";
import { KubeStore } from "../../src/store/kube.ts";
import type { Store } from "../../src/store/store.ts";
import { cleanup, tempDir } from "../e2e/harness.ts";
import { installCrds, STORE_CRDS, startWithAdmin, uniqueName } from "../kube/helpers.ts";
import { storeContract } from "./contract.ts";

let client: KubeClient;
const dir = tempDir("ipamd-kube-store-");

beforeAll(async () => {
  ({ client } = await startWithAdmin());
  await installCrds(client, STORE_CRDS);
}, 120_000);
afterAll(cleanup);

const opened = new WeakMap<Store, { namespace: string; db: string }>();

async function openStore(namespace: string, db: string, node = ""): Promise<KubeStore> {
  const store = await KubeStore.open({ client, namespace, node, db, blockPrefixes: { v4: 26, v6: 122 } });
  opened.set(store, { namespace, db });
  return store;
}

async function freshNamespace(): Promise<string> {
  const namespace = uniqueName("store");
  await client.create(Namespaces, { metadata: { name: namespace } });
  return namespace;
}

storeContract("kubernetes", {
  async open() {
    const namespace = await freshNamespace();
    return openStore(namespace, join(dir, `${namespace}.db`));
  },
  async reopen(store) {
    await store.close();
    const { namespace, db } = opened.get(store)!;
    return openStore(namespace, db);
  },
});
