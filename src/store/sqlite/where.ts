/** The WHERE of the SQLite admin reads (allocations, history): one equality per filter field given. */
export type Param = string | number | Uint8Array | null;

/** `column = ?` for every filter field that is set, with its value. */
export function equalities<F extends object>(columns: [keyof F, string][], filter: F): { conditions: string[]; params: Param[] } {
  const set = columns.filter(([key]) => filter[key] !== undefined);
  return { conditions: set.map(([, column]) => `${column} = ?`), params: set.map(([key]) => filter[key] as string) };
}
