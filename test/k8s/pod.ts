/**
 * A DaemonSet pod, played out on this machine without Kubernetes: each volume gets a
 * backing directory (hostPath → a fake host filesystem, configMap/secret → their items,
 * emptyDir → an empty dir), each container gets a fake root where every mountPath is a
 * bind mount of its volume, as kubelet makes it, and every absolute path in a command is
 * moved under that root. So a command that writes under --host-root really lands in the
 * hostPath volume's host directory, or fails if the manifest's paths disagree with the
 * binary's defaults. (Not symlinks: the installer rightly refuses a symlink under
 * --host-root that leads outside it, which is what a symlink to a volume would be.)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { BINARY, onCleanup } from "../e2e/harness.ts";

export type Doc = Record<string, any>;

export interface Pod {
  /** The fake host: hostPath volumes live at host + their path. */
  host: string;
  /** The container's view: argv with the image's binary replaced by dist/ipamd and paths moved under its root. */
  argv(container: Doc, command?: string[]): string[];
  /** Where a container path really is. */
  path(container: Doc, p: string): string;
  containers: Doc[];
}

export const IMAGE_BINARY_NAME = "ipamd";

/** `$(VAR)` as kubelet expands it from the container's env (fieldRefs get fixed values). */
function expand(arg: string, container: Doc, fields: Record<string, string>): string {
  return arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => {
    const env = (container.env ?? []).find((e: Doc) => e.name === name);
    if (!env) throw new Error(`${container.name}: $(${name}) has no env entry`);
    if (env.value !== undefined) return env.value;
    const field = env.valueFrom?.fieldRef?.fieldPath;
    if (field && fields[field] !== undefined) return fields[field]!;
    throw new Error(`${container.name}: env ${name} comes from ${JSON.stringify(env.valueFrom)}, which this test does not provide`);
  });
}

/** Mounts `source` on `target` (a new directory) until cleanup(); registered after the temp dir, so unmounted before it is removed. */
function bindMount(source: string, target: string): void {
  mkdirSync(target, { recursive: true });
  const mounted = Bun.spawnSync(["mount", "--bind", source, target], { stderr: "pipe" });
  if (mounted.exitCode !== 0) throw new Error(`mount --bind ${source} ${target} failed (this test needs root, as kubelet does): ${mounted.stderr.toString().trim()}`);
  onCleanup(() => void Bun.spawnSync(["umount", "--lazy", target]));
}

export function podOf(ds: Doc, configMaps: Map<string, Doc>, dir: string, imageBinary: string, fields: Record<string, string>): Pod {
  const spec = ds.spec.template.spec;
  const host = join(dir, "host");
  const backing = new Map<string, string>();
  for (const volume of spec.volumes ?? []) {
    let path: string;
    if (volume.hostPath) {
      path = join(host, volume.hostPath.path);
      mkdirSync(path, { recursive: true });
    } else if (volume.configMap || volume.secret) {
      path = join(dir, "volumes", volume.name);
      mkdirSync(path, { recursive: true });
      const source = volume.configMap ? configMaps.get(volume.configMap.name) : null;
      if (volume.configMap && !source) throw new Error(`volume ${volume.name}: no ConfigMap ${volume.configMap.name}`);
      const data: Record<string, string> = source?.data ?? {};
      const items: { key: string; path: string }[] = (volume.configMap ?? volume.secret).items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const item of items) {
        if (source && data[item.key] === undefined) throw new Error(`volume ${volume.name}: ConfigMap ${source.metadata.name} has no key ${item.key}`);
        mkdirSync(dirname(join(path, item.path)), { recursive: true });
        writeFileSync(join(path, item.path), source ? data[item.key]! : `placeholder for secret key ${item.key}\n`);
      }
    } else if (volume.emptyDir) {
      path = join(dir, "volumes", volume.name);
      mkdirSync(path, { recursive: true });
    } else {
      throw new Error(`volume ${volume.name}: kind not handled by this test`);
    }
    backing.set(volume.name, path);
  }
  const containers: Doc[] = [...(spec.initContainers ?? []), ...spec.containers];
  const roots = new Map<string, string>();
  for (const c of containers) {
    const root = join(dir, "containers", c.name);
    mkdirSync(root, { recursive: true });
    for (const m of c.volumeMounts ?? []) {
      const target = backing.get(m.name);
      if (!target) throw new Error(`${c.name}: volumeMount ${m.name} has no volume`);
      bindMount(target, join(root, m.mountPath));
    }
    roots.set(c.name, root);
  }
  const path = (c: Doc, p: string) => (p.startsWith("/") ? join(roots.get(c.name)!, p) : p);
  return {
    host,
    containers,
    path,
    argv(c: Doc, command: string[] = [...(c.command ?? []), ...(c.args ?? [])]) {
      const [exe, ...args] = command.map((a) => expand(a, c, fields));
      if (exe !== imageBinary) throw new Error(`${c.name}: runs ${exe}, but the image has the binary at ${imageBinary}`);
      // Comma lists (etcd endpoints) and URLs stay as they are; absolute paths move.
      return [BINARY, ...args.map((a) => (a.startsWith("/") ? path(c, a) : a))];
    },
  };
}

/** The mount (and its volume) that holds a container path, if any. */
export function mountHolding(ds: Doc, container: Doc, p: string): { mount: Doc; volume: Doc } | null {
  const mounts = [...(container.volumeMounts ?? [])].sort((a: Doc, b: Doc) => b.mountPath.length - a.mountPath.length);
  const mount = mounts.find((m: Doc) => p === m.mountPath || p.startsWith(`${m.mountPath}/`));
  if (!mount) return null;
  return { mount, volume: ds.spec.template.spec.volumes.find((v: Doc) => v.name === mount.name) };
}
