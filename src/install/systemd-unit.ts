/**
 * The systemd unit `install --systemd` writes. The daemon needs to write only its socket's
 * directory and its database's directory; everything else is read-only or hidden. Each
 * option below was checked against what `ipamd serve` does:
 *
 * - RuntimeDirectory=ipamd (0700) and StateDirectory=ipamd (0700) create /run/ipamd and
 *   /var/lib/ipamd before the service starts; ProtectSystem=strict leaves only them (and
 *   ReadWritePaths) writable. The socket (0600) and the sqlite db with its -wal/-shm files
 *   live there. A config file that moves `socket` or `db` elsewhere needs ReadWritePaths
 *   for that place in a drop-in (`systemctl edit ipamd`).
 * - /run/netns (where runtimes pin pod network namespaces) stays visible, read-only, under
 *   ProtectSystem=strict: the leak sweep only checks that a netns path still exists, and new
 *   netns files appear because the service's mounts follow the host's. No extra bind mount.
 * - No MemoryDenyWriteExecute: Bun's JavaScript JIT needs writable+executable memory.
 * - No capabilities: the daemon runs as root but only touches root-owned files in its own
 *   directories; it binds a unix socket and, with --store etcd, connects out over TCP.
 */

export interface UnitOptions {
  /** The binary as the host sees it (without --host-root), e.g. /opt/cni/bin/ipamd. */
  binary: string;
  version: string;
}

export function systemdUnit({ binary, version }: UnitOptions): string {
  return `# Written by \`ipamd install --systemd\` (ipamd ${version}). Local changes belong in a
# drop-in (systemctl edit ipamd), which a re-install leaves alone.
[Unit]
Description=ipamd: IP address management daemon for CNI
# Pods get addresses only while the daemon runs: start it before the container runtime's users.
Before=kubelet.service
After=local-fs.target

[Service]
Type=exec
# Flags win over /etc/ipamd/config.json; socket and db are the defaults, spelled out so
# they visibly match RuntimeDirectory and StateDirectory below.
ExecStart=${binary} serve --socket /run/ipamd/ipamd.sock --db /var/lib/ipamd/ipamd.db
ExecReload=${binary} reload
Restart=on-failure
RestartSec=2s
# SIGTERM: requests in flight are answered, the store is closed, the socket removed.
KillSignal=SIGTERM
TimeoutStopSec=30s

RuntimeDirectory=ipamd
RuntimeDirectoryMode=0700
StateDirectory=ipamd
StateDirectoryMode=0700
UMask=0077

ProtectSystem=strict
ReadWritePaths=/run/ipamd /var/lib/ipamd
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}
