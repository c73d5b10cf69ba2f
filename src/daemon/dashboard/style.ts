/** The dashboard's whole stylesheet, inlined in every page: no external assets, light and dark. */
export const CSS = `
:root{--bg:#f5f6f8;--fg:#18202c;--muted:#5d6878;--line:#e2e5ea;--card:#fff;--head:#fafbfc;--accent:#2557d6;
--ok:#2e9b62;--warn:#d48806;--crit:#d0342c;--track:#e8ebf0;--chip:#eef1f6;--on-accent:#fff;--mono:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace}
@media (prefers-color-scheme:dark){:root{--bg:#0e1217;--fg:#e3e7ed;--muted:#98a2b1;--line:#252c36;--card:#161b22;--head:#1b212a;
--accent:#7ea6ff;--track:#262e39;--chip:#222a35;--on-accent:#0e1217}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Liberation Sans",Arial,sans-serif}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
a:focus-visible,button:focus-visible,input:focus-visible,summary:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
.wrap{max-width:1200px;margin:0 auto;padding:0 20px}
header.top{background:var(--card);border-bottom:1px solid var(--line)}
header.top .wrap{display:flex;align-items:center;gap:24px;min-height:60px;flex-wrap:wrap;padding-top:10px;padding-bottom:10px}
.brand{font-weight:700;font-size:18px;color:var(--fg);letter-spacing:-.01em;display:flex;align-items:center;gap:8px}
.brand::before{content:"";width:14px;height:14px;border-radius:4px;background:linear-gradient(135deg,var(--accent),var(--ok))}
nav{display:flex;gap:4px}
nav a{color:var(--muted);padding:6px 10px;border-radius:6px;font-weight:500}
nav a[aria-current=page]{color:var(--fg);background:var(--chip)}
form.search{margin-left:auto;display:flex;gap:8px;flex:1 1 340px;max-width:460px}
form.search input{flex:1;min-width:0;font:inherit;padding:7px 12px;border:1px solid var(--line);border-radius:8px;background:var(--bg);color:var(--fg)}
button{font:inherit;font-weight:600;padding:7px 14px;border:0;border-radius:8px;background:var(--accent);color:var(--on-accent);cursor:pointer}
main.wrap{padding-top:32px;padding-bottom:48px}
h1{font-size:26px;line-height:1.25;margin:0 0 6px;letter-spacing:-.015em;word-break:break-word}
h2{font-size:18px;margin:36px 0 12px}
.lead{color:var(--muted);margin:0 0 20px}
.muted{color:var(--muted)}
sup{font-size:.7em;line-height:0}
.mono,code{font-family:var(--mono);font-size:.92em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px 20px}
.card h3{margin:0;font-size:16px;word-break:break-all}
.card-head{display:flex;gap:8px;align-items:baseline;justify-content:space-between;flex-wrap:wrap}
.def{color:var(--muted);font-family:var(--mono);font-size:12.5px;margin:4px 0 14px;word-break:break-all}
.badge{display:inline-block;font-size:12px;font-weight:600;padding:1px 8px;border-radius:999px;background:var(--chip);color:var(--muted);white-space:nowrap}
.badge.ok,.badge.allocated,.badge.static{background:color-mix(in srgb,var(--ok) 16%,transparent);color:var(--ok)}
.badge.reclaimed,.badge.warn{background:color-mix(in srgb,var(--warn) 18%,transparent);color:var(--warn)}
.badge.crit{background:color-mix(in srgb,var(--crit) 16%,transparent);color:var(--crit)}
.badge.imported{background:color-mix(in srgb,var(--accent) 16%,transparent);color:var(--accent)}
.meter{height:10px;border-radius:999px;background:var(--track);overflow:hidden}
.meter>span{display:block;height:100%;border-radius:999px;background:var(--ok);min-width:0}
.meter.warn>span{background:var(--warn)}
.meter.crit>span{background:var(--crit)}
.util{display:flex;justify-content:space-between;align-items:baseline;margin-bottom:6px}
.util strong{font-size:22px;font-variant-numeric:tabular-nums;letter-spacing:-.02em}
.util.warn strong{color:var(--warn)}
.util.crit strong{color:var(--crit)}
.figures{display:grid;grid-template-columns:repeat(3,1fr);gap:8px;margin:14px 0 0;padding:0}
.figures div{margin:0}
.figures dt{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.figures dd{margin:0;font-weight:600;font-variant-numeric:tabular-nums}
.card h3 a{color:var(--fg)}
.facts{display:flex;flex-wrap:wrap;gap:4px 14px;margin-top:14px;padding-top:12px;border-top:1px solid var(--line);font-size:13px;color:var(--muted)}
.facts b{color:var(--fg);font-variant-numeric:tabular-nums}
.facts .alert,.facts .alert b{color:var(--warn)}
.facts a{margin-left:auto}
details{margin-top:10px;font-size:13px}
details summary{cursor:pointer;color:var(--accent)}
details ul{margin:6px 0 0;padding-left:18px;font-family:var(--mono);font-size:12.5px}
.table-wrap{background:var(--card);border:1px solid var(--line);border-radius:12px;overflow-x:auto}
table{width:100%;border-collapse:collapse;font-size:14px}
th{text-align:left;font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);background:var(--head);padding:10px 14px;border-bottom:1px solid var(--line);white-space:nowrap}
td{padding:9px 14px;border-bottom:1px solid var(--line);vertical-align:top}
tr:last-child td{border-bottom:0}
tbody tr:hover{background:var(--head)}
td.ip{font-family:var(--mono);white-space:nowrap;font-weight:600}
td.nowrap{white-space:nowrap}
td.cause{color:var(--muted);min-width:200px}
.empty{padding:28px 20px;text-align:center;color:var(--muted)}
.pager{display:flex;justify-content:space-between;align-items:center;gap:12px;margin-top:14px;flex-wrap:wrap}
.pager a,.pager span.off{padding:6px 12px;border:1px solid var(--line);border-radius:8px;background:var(--card)}
.pager span.off{color:var(--muted);opacity:.6}
.chips{display:flex;gap:8px;flex-wrap:wrap;margin:0 0 16px}
.chip{font-size:13px;padding:3px 10px;border-radius:999px;background:var(--chip);color:var(--fg);word-break:break-all}
.chip a{margin-left:6px;color:var(--muted)}
.holder{margin-bottom:16px}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:6px 20px;margin:0;font-size:14px}
.kv dt{color:var(--muted)}
.kv dd{margin:0;word-break:break-all}
.status{display:flex;align-items:center;gap:12px;flex-wrap:wrap}
.status h1{font-family:var(--mono);font-size:28px}
.notice{background:var(--card);border:1px solid var(--line);border-left:4px solid var(--accent);border-radius:8px;padding:14px 18px;margin:12px 0}
footer{color:var(--muted);font-size:13px;padding-bottom:32px}
@media (max-width:700px){
  .wrap{padding:0 14px}
  header.top .wrap{gap:10px 16px}
  form.search{flex-basis:100%;max-width:none;margin-left:0}
  .opt{display:none}
  h1{font-size:22px}
  .status h1{font-size:22px}
  .grid{grid-template-columns:1fr}
  .table-wrap{background:none;border:0;overflow:visible}
  table,tbody,tr,td{display:block}
  thead{display:none}
  tr{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:8px 14px;margin-bottom:10px}
  td,td.cause{display:flex;gap:12px;justify-content:space-between;padding:4px 0;border:0;min-width:0;text-align:right;overflow-wrap:anywhere}
  td::before{content:attr(data-label);color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em;font-family:system-ui,sans-serif;font-weight:500;text-align:left;white-space:nowrap;padding-top:2px}
  td.opt{display:none}
  tbody tr:hover{background:var(--card)}
  .kv{grid-template-columns:1fr;gap:0}
  .kv dd{margin-bottom:8px}
}
`;
