/**
 * The daemon's logger: consola's core with our own reporter (the default entry costs 15-22 ms
 * of start-up and pulls in prompts we never use). One JSON object per line when stderr is
 * not a terminal, which journald and `kubectl logs` keep intact; a short human line on a TTY.
 * The plugin never imports this: it reports failures only as its CNI error object.
 */
import { type ConsolaInstance, type ConsolaReporter, createConsola, type LogObject } from "consola/core";

function messageOf(args: unknown[]): { msg: string; fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {};
  const words: string[] = [];
  for (const arg of args) {
    if (arg instanceof Error) fields.error = arg.message;
    else if (arg && typeof arg === "object") Object.assign(fields, arg);
    else words.push(String(arg));
  }
  return { msg: words.join(" "), fields };
}

const jsonReporter: ConsolaReporter = {
  log(entry: LogObject) {
    const { msg, fields } = messageOf(entry.args);
    process.stderr.write(`${JSON.stringify({ time: entry.date.toISOString(), level: entry.type, msg, ...fields })}\n`);
  },
};

const humanReporter: ConsolaReporter = {
  log(entry: LogObject) {
    const { msg, fields } = messageOf(entry.args);
    const extra = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    process.stderr.write(`${entry.date.toISOString().slice(11, 23)} ${entry.type.padEnd(5)} ${msg}${extra ? ` ${extra}` : ""}\n`);
  },
};

export function createLogger(options: { json?: boolean; level?: number } = {}): ConsolaInstance {
  const json = options.json ?? !process.stderr.isTTY;
  return createConsola({ level: options.level ?? 3, reporters: [json ? jsonReporter : humanReporter] });
}
