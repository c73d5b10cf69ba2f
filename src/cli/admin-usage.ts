/** The admin verbs' lines of `ipamd --help` (kept apart so --help loads no verb code). */
import { DEFAULT_SOCKET } from "../protocol.ts";

export const ADMIN_USAGE = `  ipamd pools [--json]            named pools (size, used, free, utilization, held, node subnets,
                                  orphans), then the netconfs' inline range sets
  ipamd allocations [--pool P] [--node N] [--pod NS/NAME] [--network N] [--limit N] [--json]
  ipamd show IP|CONTAINER|NS/POD [--json]
                                  who holds it, since when, and who held it before
  ipamd release IP --yes [--network NAME]
                                  release an address (and any sticky binding or cooldown on it);
                                  held in several networks, name the one with --network
  ipamd gc [--dry-run] [--json]   reclaim addresses of containers whose netns is gone, now
  ipamd import host-local DIR [--network NAME] [--conf NETCONF] [--json]
                                  take over a host-local data dir (idempotent)
  ipamd reload                    re-read the daemon's config file (as SIGHUP)
  (every verb takes --socket PATH; default ${DEFAULT_SOCKET})`;

