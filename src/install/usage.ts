/** The install verb's usage lines; its own file so `ipamd --help` loads nothing of the installer. */
export const INSTALL_USAGE = `  ipamd install [--bin-dir /opt/cni/bin] [--conf-dir /etc/cni/net.d] [--conf FILE]
                [--host-root DIR] [--systemd [--unit-dir /etc/systemd/system]]
                [--wait] [--uninstall] [--dry-run]
                      copy this binary (and the netconf FILE) onto the host atomically;
                      --wait re-installs when FILE changes, --systemd writes ipamd.service`;
