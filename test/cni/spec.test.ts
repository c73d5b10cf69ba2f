import { describe, expect, test } from "bun:test";
import { compareVersions, containerIdProblem, interfaceNameProblem, parseCniArgs } from "../../src/cni/spec.ts";
import { IpamError } from "../../src/errors.ts";

describe("CNI_ARGS", () => {
  test("parses kubelet's pairs", () => {
    const args = parseCniArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=1234;IP=10.0.0.5,fd00::5");
    expect(args.get("K8S_POD_NAME")).toBe("web-0");
    expect(args.get("IP")).toBe("10.0.0.5,fd00::5");
  });
  test("empty and missing are no arguments", () => {
    expect(parseCniArgs("").size).toBe(0);
    expect(parseCniArgs(undefined).size).toBe(0);
  });
  test("a pair without '=' is an invalid-environment error (code 4)", () => {
    expect(() => parseCniArgs("A=1;broken")).toThrow(expect.objectContaining({ code: 4, message: expect.stringContaining('"broken"') }));
    expect(() => parseCniArgs("K8S_POD_NAME")).toThrow(IpamError);
  });
});

describe("interface names and container IDs (libcni's rules)", () => {
  test("15 bytes is the limit", () => {
    expect(interfaceNameProblem("eth0")).toBeNull();
    expect(interfaceNameProblem("a".repeat(15))).toBeNull();
    expect(interfaceNameProblem("a".repeat(16))).toContain("longer than 15 bytes");
    expect(interfaceNameProblem("ééééééééé")).toContain("longer than 15 bytes"); // 9 characters, 18 bytes
  });
  test("no '/', ':', space, '.' or '..'", () => {
    for (const bad of ["eth/0", "eth:0", "eth 0", ".", "..", ""]) expect(interfaceNameProblem(bad)).not.toBeNull();
  });
  test("container IDs", () => {
    expect(containerIdProblem("0123abc_def.x-y")).toBeNull();
    for (const bad of ["", "-abc", "abc/def", "abc def"]) expect(containerIdProblem(bad)).not.toBeNull();
  });
});

test("version comparison", () => {
  expect(compareVersions("0.3.1", "0.4.0")).toBeLessThan(0);
  expect(compareVersions("1.1.0", "1.0.0")).toBeGreaterThan(0);
  expect(compareVersions("1.0.0", "1.0.0")).toBe(0);
});
