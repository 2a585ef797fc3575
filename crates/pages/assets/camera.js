// 扫码核验 with the camera: the clerk's browser reads the holder's QR code from the camera
// (getUserMedia) with the vendored jsQR decoder, puts the code's text into the scan form and
// sends it, as if it had been typed. Nothing leaves the browser but that form. Without a
// camera (or without JavaScript) the upload and text fields do the same.
(function () {
  var box = document.getElementById("camera");
  var form = document.getElementById("scan-form");
  if (!box || !form || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.jsQR) return;
  box.hidden = false;
  var video = document.getElementById("camera-video");
  var status = document.getElementById("camera-status");
  var canvas = document.createElement("canvas");
  var context = canvas.getContext("2d", { willReadFrequently: true });
  var stream = null;
  function stop() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
  }
  function look() {
    if (!stream) return;
    if (video.readyState >= 2 && video.videoWidth > 0) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      var frame = context.getImageData(0, 0, canvas.width, canvas.height);
      var code = window.jsQR(frame.data, frame.width, frame.height, { inversionAttempts: "dontInvert" });
      if (code && code.data) {
        stop();
        status.textContent = "已读出二维码，正在核验……";
        document.getElementById("scan-token").value = code.data;
        form.submit();
        return;
      }
    }
    requestAnimationFrame(look);
  }
  document.getElementById("camera-start").addEventListener("click", function () {
    status.textContent = "正在打开摄像头……";
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.hidden = false;
        return video.play();
      })
      .then(function () {
        status.textContent = "请将持证人的亮证二维码对准摄像头。";
        look();
      })
      .catch(function (e) {
        stop();
        status.textContent = "无法使用摄像头（" + e.name + "），请上传二维码图片或填入内容。";
      });
  });
})();
