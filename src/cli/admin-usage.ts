/** The admin verbs' lines of `ipamd --help` (kept apart so --help loads no verb code). */
import { DEFAULT_SOCKET } from "../protocol.ts";

export const ADMIN_USAGE = `  ipamd pools [--json]            named pools (space, size, used, free, utilization, held,
                                  reserved, node subnets, orphans), whom they serve and which
                                  namespaces fill them, then the netconfs' inline range sets
  ipamd allocations [--pool P] [--node N] [--pod NS/NAME | --namespace NS] [--network N]
                    [--limit N] [--json]
  ipamd show IP|CONTAINER|NS/POD [--json]
                                  who holds it (or what holds it back), since when, and who
                                  held it before
  ipamd release IP --yes [--network NAME | --space NAME]
                                  release an address (and any sticky binding or cooldown on it);
                                  held in several places, name the one with --network or --space
  ipamd reserve ADDR[-ADDR] --pool P [--note TEXT]
                                  keep addresses of a pool from pods (a VIP, a router)
  ipamd unreserve ADDR[-ADDR] [--pool P | --space S]
  ipamd reservations [--pool P] [--space S] [--json]
  ipamd gc [--dry-run] [--json]   reclaim addresses of containers whose netns is gone, now
  ipamd import host-local DIR [--network NAME] [--conf NETCONF] [--json]
                                  take over a host-local data dir (idempotent)
  ipamd reload                    re-read the daemon's config file (as SIGHUP)
  (every verb takes --socket PATH; default ${DEFAULT_SOCKET})`;

