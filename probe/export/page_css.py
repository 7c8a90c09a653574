"""The status page's one inline stylesheet (the page fetches nothing else).

Phone first: everything stacks and wraps at 390 px, long names and
adversary text break anywhere instead of widening the page; from 760 px on
an endpoint's name, status and history bar share one line.
"""

CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0}
body{color:#1d2430;background:#f5f6f8}
header{background:#1d2430;color:#fff;padding:12px 16px}
header h1{margin:0 0 4px;font-size:18px}
.summary{font-size:16px;font-weight:600;margin:0 0 8px}
header dl{display:flex;flex-wrap:wrap;gap:2px 20px;margin:0;font-size:13px}
header dt{opacity:.7}header dd{margin:0 0 0 6px;font-weight:600;overflow-wrap:anywhere}
header div{display:flex;min-width:0}
a{color:#175cd3}header a{color:#b2ccff}
main{padding:4px 12px 16px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:12px 0}
section{padding:4px 12px 8px;min-width:0}
h2{font-size:16px;margin:8px 0 4px;overflow-wrap:anywhere}
h2 a{font-size:13px;font-weight:400}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
time{white-space:nowrap}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:13px;font-weight:600;color:#fff}
.badge.pending{background:#fff !important;border:2px dashed;padding:0 6px}
.s-ok{background:#1f7a3a;border-color:#1f7a3a}.s-blocked{background:#b42318;border-color:#b42318}
.s-unreachable{background:#b54708;border-color:#b54708}.s-down{background:#5b3fa6;border-color:#5b3fa6}
.s-unknown{background:#667085;border-color:#667085}.s-error{background:#8a6d00;border-color:#8a6d00}
.s-online{background:#1f7a3a}.s-offline{background:#b42318}.s-whitelist{background:#b42318}
.pending.s-ok{color:#1f7a3a}.pending.s-blocked{color:#b42318}.pending.s-unreachable{color:#b54708}
.pending.s-down{color:#5b3fa6}.pending.s-unknown{color:#667085}.pending.s-error{color:#8a6d00}
.muted{color:#667085;font-size:13px}
.tag{font-size:12px;border:1px solid #98a2b3;border-radius:4px;padding:0 4px;color:#475467}
.notice{background:#fff7e6;border:1px solid #f5c26b;border-radius:6px;padding:8px 12px;margin:12px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(108px,1fr));gap:4px;margin:12px 0}
.tile{display:block;color:#fff;text-decoration:none;border-radius:4px}
.tile{padding:4px 6px;font-size:13px;min-width:0}
.tile b{display:block;overflow-wrap:anywhere;line-height:1.25}
.tile span{display:block;font-size:12px;opacity:.95}
.tile.confirming{border-left:6px solid #fff;outline:2px dashed #fff;outline-offset:-4px}
.ep{border-top:1px solid #eceff3;padding:6px 0;display:grid;grid-template-columns:minmax(0,1fr);gap:2px 12px}
.ep.r-blocked{background:#fef3f2;margin:0 -12px;padding:6px 12px}
.ep-name,.ep-status{min-width:0}
.confirming{margin:2px 0;font-size:13px}
.bar{display:flex;gap:2px;height:18px;align-items:stretch;max-width:330px}
.h{flex:1 1 0;min-width:2px;max-width:9px;border-radius:2px}
.h-none{background:#eaecf0}
.ev p{margin:2px 0;font-size:14px}.ev details{font-size:13px}.ev summary{cursor:pointer;color:#475467}
.evtext{overflow-wrap:anywhere}
.legend dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:4px 12px}
.legend dl{margin:0;align-items:center}
.legend dd{margin:0}
footer{padding:0 16px 16px;color:#667085;font-size:13px}
@media (min-width:760px){
header{padding:14px 24px}main{padding:4px 24px 24px}
.ep{grid-template-columns:minmax(0,2fr) minmax(0,2fr) 330px;align-items:start}
.ev{grid-column:1/-1}
}
"""
