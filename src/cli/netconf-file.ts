/** The ranges of a netconf or conflist file on disk (for `import --conf`): the first ipam section found. */
import { safeParse } from "valibot";
import { ErrorCode, IpamError } from "../errors.ts";
import { RangeSetsInputSchema, type RangeSetsInput } from "../ipam/pool.ts";

export async function rangesOfNetconfFile(path: string): Promise<RangeSetsInput> {
  let conf: any;
  try {
    conf = JSON.parse(await Bun.file(path).text());
  } catch (err) {
    throw new IpamError(ErrorCode.DecodingFailure, `cannot read netconf ${path}: ${(err as Error).message}`);
  }
  const ipam = conf?.ipam ?? (Array.isArray(conf?.plugins) ? conf.plugins.find((p: any) => p?.ipam)?.ipam : undefined);
  if (!ipam) throw new IpamError(ErrorCode.InvalidNetworkConfig, `netconf ${path} has no ipam section`);
  const sets = [...(ipam.subnet ? [[{ subnet: ipam.subnet, rangeStart: ipam.rangeStart, rangeEnd: ipam.rangeEnd, gateway: ipam.gateway }]] : []), ...(ipam.ranges ?? [])];
  const parsed = safeParse(RangeSetsInputSchema, sets);
  if (!parsed.success) throw new IpamError(ErrorCode.InvalidNetworkConfig, `netconf ${path}: ipam ranges are not host-local ranges`);
  return parsed.output;
}
