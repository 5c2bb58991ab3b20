"""The page skeleton of the HTML report: style and the small script for sorting and filtering.

Kept apart from :mod:`robustest.reporting.html` so the logic there stays readable. The page is one
self-contained file: no external fonts, scripts or images.
"""

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 6px}
.meta{color:#57606a;margin-bottom:12px}
.summary{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}
.passed{color:#1a7f37} .failed{color:#cf222e}
table{border-collapse:collapse;width:100%;margin-top:8px}
th,td{border-bottom:1px solid #d8dee4;padding:4px 8px;text-align:left;vertical-align:middle}
th{background:#f6f8fa;cursor:pointer;user-select:none;white-space:nowrap}
th[data-dir=asc]::after{content:" \\25B2"} th[data-dir=desc]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.v{font-weight:600;padding:1px 6px;border-radius:10px;font-size:12px}
.v-certified{background:#dafbe1;color:#116329} .v-falsified{background:#ffebe9;color:#a40e26}
.v-unknown{background:#fff8c5;color:#7d4e00} .v-misclassified{background:#eaeef2;color:#424a53}
.filters{margin:8px 0} .filters label{margin-right:14px;cursor:pointer}
img.px{image-rendering:pixelated;width:56px;height:56px;border:1px solid #d0d7de;margin-right:4px}
.imgs{white-space:nowrap} .imgs span{display:inline-block;text-align:center;font-size:11px;color:#57606a}
svg text{font:11px system-ui,sans-serif;fill:#1b1f24} svg.scale text{font-size:9px}
svg.chart{margin:4px 0 8px 0} details{margin:2px 0} table.classes{width:auto}
.pics{display:flex;flex-wrap:wrap;gap:8px 24px} figure{margin:0} figcaption{font-weight:600;margin:6px 0 2px}
"""

SCRIPT = """
(function(){
  var table=document.getElementById('samples'); if(!table) return;
  var body=table.tBodies[0];
  function apply(){
    var on={}; document.querySelectorAll('.filters input').forEach(function(c){on[c.value]=c.checked;});
    var shown=0;
    Array.prototype.forEach.call(body.rows,function(r){
      var vis=on[r.getAttribute('data-verdict')]!==false; r.style.display=vis?'':'none'; if(vis) shown++;});
    var n=document.getElementById('shown'); if(n) n.textContent=shown;
  }
  document.querySelectorAll('.filters input').forEach(function(c){c.addEventListener('change',apply);});
  // A link ending in #only=falsified,unknown opens the page with just those verdicts shown.
  var m=/only=([a-z,]+)/.exec(location.hash);
  if(m){var keep=m[1].split(',');
    document.querySelectorAll('.filters input').forEach(function(c){c.checked=keep.indexOf(c.value)>=0;});}
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){
    th.addEventListener('click',function(){
      var dir=th.getAttribute('data-dir')==='asc'?'desc':'asc';
      Array.prototype.forEach.call(table.tHead.rows[0].cells,function(o){o.removeAttribute('data-dir');});
      th.setAttribute('data-dir',dir);
      var num=th.getAttribute('data-type')==='num';
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[col].getAttribute('data-key'), y=b.cells[col].getAttribute('data-key');
        if(num){x=x===''?Infinity:parseFloat(x); y=y===''?Infinity:parseFloat(y);}
        var c=x<y?-1:(x>y?1:0); return dir==='asc'?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  apply();
  document.body.setAttribute('data-ready','1');
})();
"""
