/** Human output of the admin CLI: aligned columns, nothing fancy, one row per line. */
type Cell = string | number | null | undefined;

const text = (cell: Cell): string => (cell === null || cell === undefined || cell === "" ? "-" : String(cell));

function render(cells: string[][], widths: number[]): string {
  return `${cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n")}\n`;
}

export function formatTable(headers: string[], rows: Cell[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(text))];
  return render(cells, headers.map((_, i) => Math.max(...cells.map((row) => row[i]!.length))));
}

/**
 * A table printed page by page as the pages arrive: the columns take their widths from the
 * first page (a wider cell later only shifts its own row), so nothing waits for the last page.
 */
export function tableStream(headers: string[], write: (text: string) => void): (rows: Cell[][]) => void {
  let widths: number[] | undefined;
  return (rows) => {
    const cells = rows.map((row) => row.map(text));
    if (!widths) {
      const all = [headers, ...cells];
      widths = headers.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
      cells.unshift(headers);
    }
    if (cells.length > 0) write(render(cells, widths));
  };
}

/** "3m", "2h", "5d": how long ago, for tables. */
export function age(since: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - since) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export const shortId = (id: string | null): string | null => (id && id.length > 16 ? id.slice(0, 12) : id);
