/** The page frame: header with navigation and the search box, inline stylesheet, footer. */
import type { Context } from "hono";
import type { Child, FC } from "hono/jsx";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { VERSION } from "../../version.ts";
import { formatAgo, formatTime } from "./format.ts";
import { CSS } from "./style.ts";

/** Progressive enhancement only: "/" focuses the search box, as on most sites. */
const SCRIPT = `document.addEventListener("keydown",function(e){var i=document.getElementById("q");if(e.key==="/"&&i&&document.activeElement!==i&&!/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)){e.preventDefault();i.focus();i.select();}});`;

let scriptHash: string | undefined;
/** Inline code is allowed by hash, nothing else may load or run: the pages show data that pods named. */
function securityHeaders(): Record<string, string> {
  scriptHash ??= new Bun.CryptoHasher("sha256").update(SCRIPT).digest("base64");
  return {
    "content-security-policy": `default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-${scriptHash}'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
  };
}

export type Section = "pools" | "allocations" | "address";

interface PageProps {
  title: string;
  section: Section;
  q?: string;
  children?: Child;
}

const Page: FC<PageProps> = ({ title, section, q, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="color-scheme" content="light dark" />
      <title>{`${title} · ipamd`}</title>
      <style dangerouslySetInnerHTML={{ __html: CSS }} />
    </head>
    <body>
      <header class="top">
        <div class="wrap">
          <a class="brand" href="/">
            ipamd
          </a>
          <nav>
            <a href="/" aria-current={section === "pools" ? "page" : undefined}>
              Pools
            </a>
            <a href="/allocations" aria-current={section === "allocations" ? "page" : undefined}>
              Allocations
            </a>
          </nav>
          <form class="search" method="get" action="/allocations" role="search">
            <input id="q" type="search" name="q" value={q ?? ""} placeholder="IP, namespace/pod, container ID or node" aria-label="Search allocations" autocomplete="off" spellcheck={false} />
            <button type="submit">Search</button>
          </form>
        </div>
      </header>
      <main class="wrap">{children}</main>
      <footer class="wrap">ipamd {VERSION}</footer>
      <script dangerouslySetInnerHTML={{ __html: SCRIPT }} />
    </body>
  </html>
);

/** Renders a whole page with the security headers. */
export async function page(c: Context, props: PageProps, status: ContentfulStatusCode = 200): Promise<Response> {
  const body = await (<Page {...props} />).toString();
  return c.html(`<!DOCTYPE html>${body}`, status, securityHeaders());
}

/** A time as "5 min ago", exact on hover. */
export const When: FC<{ at: number; now: number }> = ({ at, now }) => (
  <time datetime={new Date(at).toISOString()} title={formatTime(at)}>
    {formatAgo(at, now)}
  </time>
);
