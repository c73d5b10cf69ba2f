/**
 * One IPAddressClaim reconciled, as the Cluster API IPAM contract has it: a claim of one of
 * ipamd's pool kinds gets the ReleaseAddress finalizer, an address from the engine (the same
 * allocation path and store as the pods', so a claim and a pod never share an address), an
 * IPAddress named as the claim, and its status (addressRef, Ready). A deleted claim's address
 * is released (the pool's cooldown applies), its IPAddress deleted, its finalizer removed.
 * Paused claims, pools and clusters are left alone; a deleted claim is released even when its
 * cluster is gone. Idempotent throughout: reconciling again changes nothing.
 */
import type { ConsolaInstance } from "consola/core";
import type { Engine } from "../engine/engine.ts";
import type { Answer } from "../engine/requests.ts";
import { ErrorCode, IpamError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { modify } from "../kube/conflict.ts";
import { AlreadyExistsError, NotFoundError } from "../kube/errors.ts";
import type { Informer } from "../kube/informer.ts";
import { genericResource, type IPAddressClaimsV1beta2, IPAddressesV1beta2 } from "../kube/resources.ts";
import type { IPAddressClaimV1beta2 } from "../kube/schemas/capi.ts";
import { poolNameOf } from "../pool-source/pool-objects.ts";
import { addressFor, CLAIM_IFNAME, CLUSTER_NAME_LABEL, isOurs, isPaused, type PoolKind, type PoolOwner, PROTECT_ADDRESS_FINALIZER, readyCondition, RELEASE_ADDRESS_FINALIZER } from "./contract.ts";

const Clusters = genericResource("cluster.x-k8s.io/v1beta2", "Cluster", "clusters", true);

/** A Ready=False reason per engine answer, in the contract's CamelCase. */
const REASONS: Record<number, string> = {
  [ErrorCode.PoolExhausted]: "PoolExhausted",
  [ErrorCode.NamespaceLimitReached]: "NamespaceLimitReached",
  [ErrorCode.PoolNotAllowed]: "PoolNotAllowed",
  [ErrorCode.InvalidNetworkConfig]: "InvalidPool",
};

export interface ClaimDeps {
  client: KubeClient;
  engine: Engine;
  /** The engine's network for these claims (see claimNetwork). */
  network: string;
  /** Whether this replica leads now: nothing is allocated or released by one that does not. */
  isLeader: () => boolean;
  claims: Informer<typeof IPAddressClaimsV1beta2>;
  /** A pool object as last seen (uid, annotations), or undefined when there is none. */
  poolObject: (kind: PoolKind, namespace: string | null, name: string) => { uid: string; paused: boolean } | undefined;
  /** A pool's addresses changed: its status (and finalizer) is due. */
  touched: (pool: string) => void;
  fieldManager: string;
  log: ConsolaInstance;
}

export class ClaimReconciler {
  constructor(private readonly deps: ClaimDeps) {}

  async reconcile(key: string): Promise<void> {
    this.fence();
    const slash = key.indexOf("/");
    const claim = this.deps.claims.get(key.slice(slash + 1), key.slice(0, slash));
    if (!claim || !isOurs(claim) || isPaused(claim.metadata)) return;
    const deleting = !!claim.metadata.deletionTimestamp;
    const cluster = await this.clusterPaused(claim);
    if (cluster === "paused" || (cluster === "missing" && !deleting)) return;
    if (deleting) return this.release(claim);
    await this.allocate(claim);
  }

  /** A replica that lost its Lease stops at once: another may lead already. */
  private fence(): void {
    if (!this.deps.isLeader()) throw new Error("not leading: leaving the claim to the leader");
  }

  /**
   * Releases the allocations of claims that are gone without their finalizer having run (it
   * was removed by hand, or the claim left this controller's watch filter): the attachments of
   * the claims' network whose uid no claim has any more.
   */
  async collect(claimUids: string[]): Promise<string[]> {
    this.fence();
    return this.deps.engine.gc({ network: this.deps.network, validAttachments: claimUids.map((uid) => ({ containerID: uid, ifname: CLAIM_IFNAME })) }, "ipaddressclaim gone");
  }

  /** Whether the claim's cluster (spec.clusterName, or its cluster-name label) is paused, or missing. */
  private async clusterPaused(claim: IPAddressClaimV1beta2): Promise<"paused" | "missing" | "running"> {
    const name = claim.spec.clusterName || claim.metadata.labels?.[CLUSTER_NAME_LABEL];
    if (!name) return "running";
    try {
      const cluster = await this.deps.client.get(Clusters, name, { namespace: claim.metadata.namespace! });
      const spec = (cluster as { spec?: { paused?: boolean } }).spec;
      return spec?.paused === true || isPaused(cluster.metadata) ? "paused" : "running";
    } catch (err) {
      if (err instanceof NotFoundError) return "missing";
      throw err;
    }
  }

  private async allocate(claim: IPAddressClaimV1beta2): Promise<void> {
    const { namespace, name, uid } = claim.metadata as { namespace: string; name: string; uid: string };
    if (!claim.metadata.finalizers?.includes(RELEASE_ADDRESS_FINALIZER)) {
      await modify(this.deps.client, this.deps.claims.type, name, (c) => (c.metadata.finalizers?.includes(RELEASE_ADDRESS_FINALIZER) ? null : void (c.metadata.finalizers = [...(c.metadata.finalizers ?? []), RELEASE_ADDRESS_FINALIZER])), { namespace });
    }
    const kind = claim.spec.poolRef.kind as PoolKind;
    const pool = poolNameOf(kind, namespace, claim.spec.poolRef.name);
    const object = this.deps.poolObject(kind, kind === "InClusterIPPool" ? namespace : null, claim.spec.poolRef.name);
    if (!object || !this.deps.engine.registry.named.has(pool)) {
      return this.setStatus(claim, "False", "PoolNotFound", `${kind} ${claim.spec.poolRef.name} is not a pool ipamd serves (missing, being deleted, or invalid)`);
    }
    if (object.paused) return;
    let answer: Answer;
    try {
      this.fence();
      [answer] = (await this.deps.engine.add({ network: this.deps.network, containerID: uid, ifname: CLAIM_IFNAME, pools: [pool], pod: { namespace, name, uid } })) as [Answer];
    } catch (err) {
      // A transient answer (11: a race lost, the store unreachable) is retried with back-off.
      if (!(err instanceof IpamError) || err.code === ErrorCode.TryAgainLater || err.code === ErrorCode.IoFailure) throw err;
      return this.setStatus(claim, "False", REASONS[err.code] ?? "AllocationFailed", err.message);
    }
    const owner: PoolOwner = { kind, name: claim.spec.poolRef.name, uid: object.uid };
    await this.ensureAddress(claim, owner, answer);
    this.deps.touched(pool);
    await this.setStatus(claim, "True", "Allocated", `${answer.address}/${answer.prefix} from pool ${pool}`, claim.metadata.name!);
  }

  /** Creates the claim's IPAddress, or brings an existing one of this claim to the engine's answer. */
  private async ensureAddress(claim: IPAddressClaimV1beta2, pool: PoolOwner, answer: Answer): Promise<void> {
    const { client, fieldManager } = this.deps;
    const wanted = addressFor(claim, pool, answer);
    try {
      await client.create(IPAddressesV1beta2, wanted, { fieldManager });
      return;
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
    }
    let stale: string | undefined;
    await modify(client, IPAddressesV1beta2, claim.metadata.name!, (existing) => {
      if (existing.metadata.deletionTimestamp) throw new Error(`IPAddress ${existing.metadata.namespace}/${existing.metadata.name} is being deleted; waiting for it to go`);
      // An earlier claim of the same name still owns it: its release deletes it; taking it over
      // would leave that claim's address allocated with nothing pointing at it.
      const other = existing.metadata.ownerReferences?.find((o) => o.kind === "IPAddressClaim" && o.uid !== claim.metadata.uid);
      if (other) throw new Error(`IPAddress ${existing.metadata.namespace}/${existing.metadata.name} belongs to an earlier claim (uid ${other.uid}); waiting for its release`);
      const sameSpec = existing.spec.address === wanted.spec.address && existing.spec.prefix === wanted.spec.prefix && (existing.spec.gateway ?? undefined) === (wanted.spec.gateway ?? undefined);
      if (!sameSpec) {
        stale = existing.metadata.uid!;
        return null;
      }
      const owned = existing.metadata.ownerReferences?.some((o) => o.uid === claim.metadata.uid);
      if (owned && existing.metadata.finalizers?.includes(PROTECT_ADDRESS_FINALIZER)) return null;
      existing.metadata.ownerReferences = wanted.metadata.ownerReferences;
      existing.metadata.finalizers = [...new Set([...(existing.metadata.finalizers ?? []), PROTECT_ADDRESS_FINALIZER])];
    }, { namespace: claim.metadata.namespace! });
    // Cluster API's webhook keeps an IPAddress's spec immutable: one that says another address
    // (a pool edited under it) is replaced, not edited, and the next pass creates it anew.
    if (stale) {
      await client.delete(IPAddressesV1beta2, claim.metadata.name!, { namespace: claim.metadata.namespace!, preconditions: { uid: stale } }).catch((err) => {
        if (!(err instanceof NotFoundError)) throw err;
      });
      throw new Error(`IPAddress ${claim.metadata.namespace}/${claim.metadata.name} said another address than the pool's answer ${wanted.spec.address}; replaced`);
    }
  }

  private async release(claim: IPAddressClaimV1beta2): Promise<void> {
    if (!claim.metadata.finalizers?.includes(RELEASE_ADDRESS_FINALIZER)) return;
    const { namespace, name, uid } = claim.metadata as { namespace: string; name: string; uid: string };
    this.fence();
    await this.deps.engine.del({ network: this.deps.network, containerID: uid, ifname: CLAIM_IFNAME });
    const { client } = this.deps;
    try {
      const address = await modify(client, IPAddressesV1beta2, name, (a) => {
        if (!a.metadata.ownerReferences?.some((o) => o.uid === uid)) return null; // not this claim's
        a.metadata.finalizers = (a.metadata.finalizers ?? []).filter((f) => f !== PROTECT_ADDRESS_FINALIZER);
      }, { namespace });
      if (address.metadata.ownerReferences?.some((o) => o.uid === uid)) await client.delete(IPAddressesV1beta2, name, { namespace, preconditions: { uid: address.metadata.uid! } });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    this.deps.touched(poolNameOf(claim.spec.poolRef.kind as PoolKind, namespace, claim.spec.poolRef.name));
    await modify(client, this.deps.claims.type, name, (c) => (c.metadata.finalizers?.includes(RELEASE_ADDRESS_FINALIZER) ? void (c.metadata.finalizers = c.metadata.finalizers.filter((f) => f !== RELEASE_ADDRESS_FINALIZER)) : null), { namespace }).catch((err) => {
      if (!(err instanceof NotFoundError)) throw err;
    });
  }

  /** Sets addressRef and the Ready condition; writes only what changes. */
  private async setStatus(claim: IPAddressClaimV1beta2, status: "True" | "False", reason: string, message: string, addressRef?: string): Promise<void> {
    const { namespace, name } = claim.metadata as { namespace: string; name: string };
    await modify(this.deps.client, this.deps.claims.type, name, (c) => {
      const conditions = c.status?.conditions ?? [];
      const before = conditions.find((x) => x.type === "Ready");
      const sameRef = (c.status?.addressRef?.name ?? undefined) === addressRef || addressRef === undefined;
      if (before?.status === status && before.reason === reason && before.message === message && sameRef) return null;
      const ready = readyCondition(conditions, status, reason, message, c.metadata.generation);
      c.status = { ...(c.status ?? {}), ...(addressRef ? { addressRef: { name: addressRef } } : {}), conditions: [...conditions.filter((x) => x.type !== "Ready"), ready] };
    }, { namespace, status: true }).catch((err) => {
      if (!(err instanceof NotFoundError)) throw err;
    });
  }
}
