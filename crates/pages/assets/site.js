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

// The auditor's consistency check, done by this browser and not taken on the node's word: it
// keeps the last checkpoint it saw (size and root hash: public data) in local storage, asks the
// node for the consistency proof to the current checkpoint, and checks the proof itself
// (RFC 9162, section 2.1.4.2, with SHA-256 from WebCrypto). A node that rewrote or forked its
// history cannot make the proof check out.
(function () {
  var box = document.getElementById("consistency");
  if (!box || !window.crypto || !crypto.subtle) return;
  var key = "zhengyin.checkpoint." + box.dataset.origin;
  var now = { size: Number(box.dataset.size), root: box.dataset.root };
  function say(text, cls) {
    box.textContent = text;
    box.className = "verdict " + cls;
    box.dataset.result = cls;
  }
  function bytes(b64) {
    return Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); });
  }
  function same(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  // The hash of an interior node: SHA-256(0x01 || left || right).
  async function node(left, right) {
    var joined = new Uint8Array(1 + left.length + right.length);
    joined[0] = 1;
    joined.set(left, 1);
    joined.set(right, 1 + left.length);
    return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
  }
  async function consistent(first, second, firstRoot, secondRoot, proof) {
    if (first === second) return proof.length === 0 && same(firstRoot, secondRoot);
    if (first > second || proof.length === 0) return false;
    var path = proof.slice();
    var isPowerOfTwo = (BigInt(first) & (BigInt(first) - 1n)) === 0n;
    if (isPowerOfTwo) path.unshift(firstRoot);
    var fn = BigInt(first) - 1n, sn = BigInt(second) - 1n;
    while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
    var fr = path[0], sr = path[0];
    for (var i = 1; i < path.length; i++) {
      var c = path[i];
      if (sn === 0n) return false;
      if ((fn & 1n) === 1n || fn === sn) {
        fr = await node(c, fr);
        sr = await node(c, sr);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
        }
      } else {
        sr = await node(sr, c);
      }
      fn >>= 1n; sn >>= 1n;
    }
    return sn === 0n && same(fr, firstRoot) && same(sr, secondRoot);
  }
  async function check() {
    var seen = null;
    try { seen = JSON.parse(localStorage.getItem(key)); } catch (e) { seen = null; }
    if (!seen || !seen.size) {
      localStorage.setItem(key, JSON.stringify(now));
      say("本浏览器首次记录此日志的检查点（大小 " + now.size + "）。下次打开本页时，将核对日志是否与它一致。", "doubt");
      return;
    }
    if (seen.size > now.size) {
      say("不一致：本浏览器曾见过更大的检查点（大小 " + seen.size + "），现在只有 " + now.size + "，日志被回滚。", "bad");
      return;
    }
    var answer = await fetch("/auditor/consistency?first=" + seen.size + "&second=" + now.size, { credentials: "same-origin" });
    if (!answer.ok) { say("无法取得一致性证明（" + answer.status + "），不能确认日志一致。", "doubt"); return; }
    var proof = (await answer.json()).proof.map(bytes);
    if (await consistent(seen.size, now.size, bytes(seen.root), bytes(now.root), proof)) {
      localStorage.setItem(key, JSON.stringify(now));
      say("一致：当前检查点（大小 " + now.size + "）包含本浏览器上次见到的检查点（大小 " + seen.size + "）的全部历史，已由本浏览器验证。", "good");
    } else {
      say("不一致：一致性证明不成立，本浏览器上次见到的检查点（大小 " + seen.size + "）与当前检查点的历史不符。", "bad");
    }
  }
  check().catch(function (e) { say("核对失败：" + e, "doubt"); });
})();
