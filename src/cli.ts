/**
 * The subcommands of the binary when it is not run as a plugin. Each verb parses its own
 * flags with node:util's parseArgs (imported lazily, like everything daemon-side) and
 * answers errors with one line on stderr and a non-zero exit.
 */
import { toIpamError } from "./errors.ts";
import { DEFAULT_SOCKET } from "./protocol.ts";
import { ADMIN_USAGE } from "./cli/admin-usage.ts";
import { VERSION } from "./version.ts";
import { INSTALL_USAGE } from "./install/usage.ts";

const USAGE = `ipamd ${VERSION}: IP address management for Kubernetes

Usage:
  ipamd serve [--socket PATH] [--db PATH] [--config FILE] [--node NAME]
              [--store sqlite|etcd|kubernetes] [--etcd-endpoints URL,URL] [--etcd-cacert F]
              [--etcd-cert F] [--etcd-key F] [--etcd-prefix /ipamd/] [--kube-namespace NS]
              [--admin-listen ADDR:PORT [--tls-cert F --tls-key F --client-ca F]
                [--admin-host NAME[,NAME]]...] [--pools-from config|kubernetes
                [--kubeconfig FILE]] [--check-config]
                      run the node daemon (defaults: ${DEFAULT_SOCKET}, /var/lib/ipamd/ipamd.db);
                      the admin listener answers only its own address, localhost on
                      loopback, and the --admin-host names (DNS rebinding defence);
                      --check-config validates flags and config, prints the settings, exits;
                      --store kubernetes shares the pools through ipamd's custom resources
                      (k8s/crds/) in NS (default: the credentials' namespace), with the
                      credentials of --kubeconfig, $KUBECONFIG or the pod's ServiceAccount
  ipamd controller [--kubeconfig FILE] [--etcd-endpoints URL,URL --etcd-cacert F --etcd-cert F
                   --etcd-key F --etcd-prefix /ipamd/] [--config FILE] [--node cluster-api]
                   [--lease-namespace NS] [--lease-duration 15] [--identity NAME]
                   [--resync-seconds 30] [--watch-filter VALUE] [--db PATH]
                      serve Cluster API IPAddressClaims from the pools (InClusterIPPool,
                      GlobalInClusterIPPool) on the store the node daemons share; one
                      active replica, elected with a Lease; --db keeps the history of
                      its allocations (default /var/lib/ipamd/ipamd.db)
  ipamd status [--socket PATH]
                      exit 0 when the daemon answers (for probes and scripts)
${INSTALL_USAGE}
  ipamd version       print the version
  ipamd --help        this text

Operators (over the daemon's socket):
${ADMIN_USAGE}

As a CNI IPAM plugin (CNI_COMMAND set) it reads the netconf on stdin:
  "ipam": {"type": "ipamd", "ranges": [[{"subnet": "10.22.0.0/16"}]], "socket": "${DEFAULT_SOCKET}"}
`;

type Options = Record<string, { type: "string" | "boolean"; multiple?: boolean }>;

async function parse<O extends Options>(args: string[], options: O) {
  const { parseArgs } = await import("node:util");
  return parseArgs({ args, options: { ...options, help: { type: "boolean", short: "h" } } as O & { help: { type: "boolean"; short: "h" } }, allowPositionals: false, strict: true });
}

/** The config file, the node's name and the store: `serve` and `controller` take them alike. */
const STORE_OPTIONS = {
  config: { type: "string" },
  node: { type: "string" },
  store: { type: "string" },
  "etcd-endpoints": { type: "string" },
  "etcd-cacert": { type: "string" },
  "etcd-cert": { type: "string" },
  "etcd-key": { type: "string" },
  "etcd-prefix": { type: "string" },
} as const;

/** The store flags as ServeFlags has them. */
const storeFlags = (values: { [K in keyof typeof STORE_OPTIONS]?: string }) => ({
  config: values.config,
  node: values.node,
  store: values.store,
  etcdEndpoints: values["etcd-endpoints"],
  etcdCacert: values["etcd-cacert"],
  etcdCert: values["etcd-cert"],
  etcdKey: values["etcd-key"],
  etcdPrefix: values["etcd-prefix"],
});

/** `serve` and `serve --check-config`: the daemon's flags, as the daemon takes them. */
async function serveVerb(rest: string[]): Promise<number> {
  const { values } = await parse(rest, {
    socket: { type: "string" },
    db: { type: "string" },
    ...STORE_OPTIONS,
    "kube-namespace": { type: "string" },
    "check-config": { type: "boolean" },
    "admin-listen": { type: "string" },
    "admin-host": { type: "string", multiple: true },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    "client-ca": { type: "string" },
    "pools-from": { type: "string" },
    kubeconfig: { type: "string" },
  } as const);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { checkConfigCommand, serveCommand } = await import("./daemon/serve.ts");
  return await (values["check-config"] ? checkConfigCommand : serveCommand)({
    socket: values.socket,
    db: values.db,
    ...storeFlags(values),
    kubeNamespace: values["kube-namespace"],
    adminListen: values["admin-listen"],
    adminHosts: values["admin-host"],
    tlsCert: values["tls-cert"],
    tlsKey: values["tls-key"],
    clientCa: values["client-ca"],
    poolsFrom: values["pools-from"],
    kubeconfig: values.kubeconfig,
  });
}

/** `controller`: the store flags as `serve` has them, Kubernetes credentials, the Lease. */
async function controllerVerb(rest: string[]): Promise<number> {
  const { values } = await parse(rest, {
    ...STORE_OPTIONS,
    db: { type: "string" },
    kubeconfig: { type: "string" },
    "lease-namespace": { type: "string" },
    "lease-duration": { type: "string" },
    identity: { type: "string" },
    "resync-seconds": { type: "string" },
    "watch-filter": { type: "string" },
  } as const);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { controllerCommand } = await import("./controller/command.ts");
  return await controllerCommand({
    ...storeFlags({ ...values, store: values.store ?? "etcd" }),
    db: values.db,
    kubeconfig: values.kubeconfig,
    leaseNamespace: values["lease-namespace"],
    leaseDuration: values["lease-duration"],
    identity: values.identity,
    resyncSeconds: values["resync-seconds"],
    watchFilter: values["watch-filter"],
  });
}

/** `install`: the installer's flags. */
async function installVerb(rest: string[]): Promise<number> {
  const { values } = await parse(rest, {
    "bin-dir": { type: "string" },
    "conf-dir": { type: "string" },
    conf: { type: "string" },
    "host-root": { type: "string" },
    "unit-dir": { type: "string" },
    wait: { type: "boolean" },
    uninstall: { type: "boolean" },
    systemd: { type: "boolean" },
    "dry-run": { type: "boolean" },
  } as const);
  if (values.help) {
    process.stdout.write(`Usage:\n${INSTALL_USAGE}\n`);
    return 0;
  }
  const { installCommand } = await import("./install.ts");
  return await installCommand({
    binDir: values["bin-dir"],
    confDir: values["conf-dir"],
    conf: values.conf,
    hostRoot: values["host-root"],
    unitDir: values["unit-dir"],
    wait: values.wait,
    uninstall: values.uninstall,
    systemd: values.systemd,
    dryRun: values["dry-run"],
  });
}

export async function runCli(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return verb === undefined ? 2 : 0;
      case "version":
      case "--version":
        process.stdout.write(`ipamd ${VERSION}\n`);
        return 0;
      case "serve":
        return await serveVerb(rest);
      case "status": {
        const { values } = await parse(rest, { socket: { type: "string" } } as const);
        const { callDaemon } = await import("./cni/client.ts");
        const { Paths, StatusResponseSchema } = await import("./protocol.ts");
        const status = await callDaemon(values.socket ?? DEFAULT_SOCKET, Paths.status, undefined, StatusResponseSchema);
        process.stdout.write(`ipamd ${status.version} serving, ${status.allocations} allocations\n`);
        return 0;
      }
      case "install":
        return await installVerb(rest);
      case "controller":
        return await controllerVerb(rest);
      default: {
        const { runAdminVerb } = await import("./cli/admin-verbs.ts");
        const code = await runAdminVerb(verb, rest);
        if (code !== null) return code;
        process.stderr.write(`ipamd: unknown command "${verb}"; see ipamd --help\n`);
        return 2;
      }
    }
  } catch (err) {
    process.stderr.write(`ipamd ${verb}: ${toIpamError(err).message}\n`);
    return 1;
  }
}
