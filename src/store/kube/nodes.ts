/**
 * Which nodes are alive, on the Kubernetes-API store: each daemon holds a Lease of its own in the
 * store's namespace (as kubelets do in kube-node-lease) and renews it every third of its
 * duration; a node whose Lease was not renewed for its duration is gone, and others may give up
 * its empty blocks. Renewing is also the store's probe: a small write that proves the API
 * server persists now.
 */
import { AlreadyExistsError, ConflictError, NotFoundError } from "../../kube/errors.ts";
import { Leases } from "../../kube/resources.ts";
import { formatMicroTime, type Lease } from "../../kube/schemas/core.ts";
import type { StoreApi } from "./api.ts";
import { NODE_LEASE_LABEL, nodeLeaseName } from "./names.ts";

export class NodeLeases {
  private lease: Lease | undefined;
  private ttlSeconds = 60;
  private keepAlive: Timer | undefined;

  constructor(
    private readonly api: StoreApi,
    private readonly node: string,
  ) {}

  /** Writes the node's Lease as renewed now (creating it if needed). */
  async renew(): Promise<void> {
    const name = nodeLeaseName(this.node);
    for (let attempt = 0; attempt < 4; attempt++) {
      const spec = { holderIdentity: this.node, leaseDurationSeconds: this.ttlSeconds, renewTime: formatMicroTime(Date.now()) };
      try {
        this.lease = this.lease
          ? await this.api.call("update", Leases, () => this.api.client.update(Leases, { ...this.lease!, spec: { ...this.lease!.spec, ...spec } }))
          : await this.api.call("create", Leases, () => this.api.client.create(Leases, { metadata: { name, namespace: this.api.namespace, labels: { [NODE_LEASE_LABEL]: "true" } }, spec }));
        return;
      } catch (err) {
        if (!(err instanceof ConflictError || err instanceof NotFoundError || err instanceof AlreadyExistsError)) throw err;
        this.lease = await this.api.get(Leases, name);
      }
    }
  }

  /** Says the node is alive for ttlSeconds, and keeps saying it (every ttl/3) until stop(). */
  async announce(ttlSeconds: number): Promise<void> {
    this.ttlSeconds = ttlSeconds;
    await this.renew();
    clearInterval(this.keepAlive);
    this.keepAlive = setInterval(() => {
      this.renew().catch(() => {
        // the API server is away: the next tick tries again; the Lease outlives short outages
      });
    }, (ttlSeconds * 1000) / 3);
  }

  stop(): void {
    clearInterval(this.keepAlive);
  }

  /** Nodes whose Lease was renewed within its duration (judged by this node's clock). */
  async live(): Promise<string[]> {
    const page = await this.api.list(Leases, `${NODE_LEASE_LABEL}=true`);
    const now = Date.now();
    return page.items.flatMap((l) => {
      const renewed = Date.parse(l.spec?.renewTime ?? "");
      const holder = l.spec?.holderIdentity;
      return holder && renewed + (l.spec?.leaseDurationSeconds ?? 0) * 1000 > now ? [holder] : [];
    });
  }
}
