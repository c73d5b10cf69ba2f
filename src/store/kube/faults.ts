/**
 * The Kubernetes API's failures as the store names them (storage-fault.ts): an API server that
 * does not answer, answers 5xx or asks us to slow down can recover by itself (11: try again
 * later); one that refuses ipamd's credentials or does not serve ipamd's kinds needs someone to
 * act (5). Conflicts and "not found" are answers the store acts on, never faults.
 */
import { ErrorCode } from "../../errors.ts";
import { ForbiddenError, KubeApiError, KubeConnectionError, KubeInvalidResponseError, NotFoundError, UnauthorizedError } from "../../kube/errors.ts";
import { StorageFault, UnconfirmedWrite } from "../storage-fault.ts";

/** A 404 that names no object: the API server does not serve the kind at all (its CRD is not applied). */
export const kindMissing = (err: NotFoundError): boolean => !err.status?.details?.name;

/** The StorageFault an API failure stands for, or the error itself when it is not one. */
export function apiFault(where: string, err: unknown): unknown {
  if (err instanceof StorageFault) return err;
  if (err instanceof KubeConnectionError) return new StorageFault(where, "the Kubernetes API server is not available", ErrorCode.TryAgainLater, err.message);
  if (err instanceof UnauthorizedError || err instanceof ForbiddenError) {
    return new StorageFault(where, "the Kubernetes API server refuses ipamd's credentials (check its ServiceAccount and RBAC)", ErrorCode.IoFailure, err.message);
  }
  if (err instanceof NotFoundError && kindMissing(err)) {
    return new StorageFault(where, "the API server does not serve ipamd's kinds (kubectl apply -f k8s/crds/)", ErrorCode.IoFailure, err.message);
  }
  if (err instanceof KubeApiError && (err.code >= 500 || err.code === 429)) return new StorageFault(where, "the Kubernetes API server is not available", ErrorCode.TryAgainLater, err.message);
  if (err instanceof KubeInvalidResponseError) return new StorageFault(where, "the Kubernetes API server answered what ipamd cannot read", ErrorCode.IoFailure, err.message);
  return err;
}

/** Whether a failed write may have been applied anyway (no answer, or the server failed after accepting it). */
export function mayHaveApplied(err: unknown): boolean {
  if (err instanceof KubeConnectionError || err instanceof UnconfirmedWrite) return true;
  return err instanceof KubeApiError && err.code >= 500;
}
