// The pages' one script: countdowns. An element with data-expires (Unix seconds) shows the
// seconds left; one with data-renew-after (seconds) reloads the page then, for a fresh code
// before this one expires. Everything works without it (the page has a link to reload).
(function () {
  var counters = document.querySelectorAll("[data-expires]");
  if (counters.length === 0) return;
  function tick() {
    var now = Date.now() / 1000;
    counters.forEach(function (el) {
      var left = Math.max(0, Math.round(Number(el.dataset.expires) - now));
      el.textContent = left > 0 ? left + " 秒后失效" : "已失效，正在刷新";
    });
  }
  tick();
  setInterval(tick, 1000);
  counters.forEach(function (el) {
    var after = Number(el.dataset.renewAfter);
    if (after > 0) setTimeout(function () { location.reload(); }, after * 1000);
  });
})();
