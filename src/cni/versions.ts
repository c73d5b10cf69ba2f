/**
 * The CNI versions and commands we speak, as plain constants: the plugin's fast path (VERSION,
 * and deciding what to forward) reads them without loading a schema library (DESIGN.md, the
 * plugin's hot path). spec.ts re-exports them beside the schemas.
 */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = "1.1.0";

export const COMMANDS = ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"] as const;
export type Command = (typeof COMMANDS)[number];

/** The answer to VERSION, whatever the netconf says. */
export const VERSION_RESULT = { cniVersion: LATEST_VERSION, supportedVersions: SUPPORTED_VERSIONS };
