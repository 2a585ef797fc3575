//! Sealed OFD files open in an independent renderer: ofd.js (the pinned release fetched by
//! scripts/ofdjs.sh) in headless Chromium over WebDriver. A licence file made at issue and a
//! third-party document sealed through the API render every page; the renderer's text layer
//! holds the face as the catalogue titles it (OCR-free), and the seal's picture is drawn.
//! Screenshots of each are written to target/ofd-render/ for review.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::ofd::b64;
use common::{business_licence, root, send, Server, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use webdriver::Driver;

/// A folder holding the render page, ofd.js and `package` as data.js; the page's URL.
fn render_page(name: &str, package: &[u8]) -> (PathBuf, String) {
    let renderer = common::installed("ofdjs.sh");
    let dir = root().join("target/ofd-render").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(root().join("tests/browser/ofd-render.html"), dir.join("render.html")).unwrap();
    std::fs::copy(&renderer, dir.join("ofd.umd.min.js")).unwrap();
    std::fs::write(
        dir.join("data.js"),
        format!("window.OFD_BASE64 = \"{}\";", b64(package)),
    )
    .unwrap();
    let url = format!("file://{}", dir.join("render.html").display());
    (dir, url)
}

/// Renders `package` in the browser: the text of its pages with white space removed, and how
/// many pixels of the window are seal red. The screenshot is written next to the page.
async fn render(driver: &Driver, name: &str, package: &[u8], pages: usize) -> (String, usize) {
    let (dir, url) = render_page(name, package);
    driver.session("POST", "/url", json!({ "url": url })).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = driver
            .execute("return document.getElementById('state').textContent")
            .await;
        if state == format!("rendered {pages}") {
            break;
        }
        assert!(
            Instant::now() < deadline && !state.as_str().unwrap_or_default().starts_with("failed"),
            "{name}: ofd.js says {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = driver
        .execute("return document.getElementById('pages').textContent")
        .await;
    let shot = driver.screenshot(900, 1250).await;
    std::fs::write(dir.with_extension("png"), &shot).unwrap();
    let text: String = text.as_str().unwrap().chars().filter(|c| !c.is_whitespace()).collect();
    (text, red_pixels(&shot))
}

/// Pixels of a screenshot in the seal picture's red (the text is black, the page white).
fn red_pixels(png_bytes: &[u8]) -> usize {
    let mut reader = png::Decoder::new(png_bytes).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    pixels[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p[0] > 170 && p[1] < 70 && p[2] < 70)
        .count()
}

fn vector(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(&root()).join("tests/vectors").join(path)).unwrap()
}

/// Loads the font given as base64 (`arguments[0]`) as a web font (Chromium's font sanitiser,
/// OTS, checks it first) and measures and draws `arguments[1]` with it and with the installed
/// WenQuanYi Micro Hei it was cut from: "drawn W V N" (W and V the two widths in pixels, N pixels
/// inked with the subset), or why the font was refused. The drawings themselves differ slightly:
/// Chromium hints system fonts by the system's settings and web fonts by its own.
const DRAW_WITH_FONT: &str = r#"
const [font, text, done] = arguments;
const context = (family) => {
  const canvas = document.createElement('canvas');
  canvas.width = 1600; canvas.height = 80;
  const g = canvas.getContext('2d');
  g.fillStyle = '#fff'; g.fillRect(0, 0, 1600, 80);
  g.fillStyle = '#000'; g.font = `48px ${family}`;
  return g;
};
const bytes = Uint8Array.from(atob(font), (c) => c.charCodeAt(0));
new FontFace('embedded-subset', bytes).load().then((face) => {
  document.fonts.add(face);
  return document.fonts.load('48px "WenQuanYi Micro Hei"', text);
}).then(() => {
  const subset = context('embedded-subset');
  const installed = context('"WenQuanYi Micro Hei"');
  subset.fillText(text, 4, 60);
  const pixels = subset.getImageData(0, 0, 1600, 80).data;
  let inked = 0;
  for (let i = 0; i < pixels.length; i += 4) if (pixels[i] < 128) inked++;
  done(`drawn ${subset.measureText(text).width} ${installed.measureText(text).width} ${inked}`);
}, (e) => done(`refused: ${e}`));
"#;

#[tokio::test(flavor = "multi_thread")]
async fn licence_files_and_sealed_documents_render_in_ofd_js() {
    let dir = TempDir::new("ofd-render");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let driver = Driver::start().await;
    let es_id = common::ofd::make_sm2_seal(&http, &server, Some(&common::seal_picture_png())).await;

    // A licence file, as issued: every line of its face in the text layer, the seal drawn.
    let mut request = business_licence("JL-RENDER-1");
    request["face"]["business_scope"] = json!("软件开发；信息技术咨询服务；数据处理和存储支持服务。".repeat(3));
    let (status, issued) = send(&http, &server, "/v1/licences", "demo-authority-sm2", &request).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let id = issued["id"].as_str().unwrap();
    let file = http
        .get(server.at(&format!("/v1/licences/{id}/file")))
        .bearer_auth("demo-authority-sm2")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (text, red) = render(&driver, "licence", &file, 1).await;
    for line in [
        "营业执照".to_owned(),
        format!("证照标识：{id}"),
        "证照编号JL-RENDER-1".to_owned(),
        "持证主体吉林示例科技有限公司".to_owned(),
        "统一社会信用代码91350100M000100Y43".to_owned(),
        "法定代表人张三".to_owned(),
        "成立日期2020年2月29日".to_owned(),
        "住所长春市示例路1号".to_owned(),
        format!(
            "经营范围{}",
            "软件开发；信息技术咨询服务；数据处理和存储支持服务。".repeat(3)
        ),
        "扫码核验".to_owned(),
    ] {
        assert!(text.contains(&line), "the rendered licence lacks {line:?}: {text}");
    }
    // The ring and star of a 40 mm seal at 800 px a page: about 4,000 red pixels.
    assert!(red > 1500, "the seal's picture is drawn: {red} red pixels");

    // The embedded font (ofd.js draws with system fonts, so Chromium checks it directly): its
    // font sanitiser (OTS) accepts the subset, and the face's text set in it is as wide as in
    // the installed font it was cut from, and inked.
    let font = common::ofd::entry(&common::ofd::unzip(&file), "Doc_0/Res/font_1.ttf").to_vec();
    let text = "营业执照法定代表人张三住所长春市示例路1号JL-RENDER-1";
    let drawn = driver
        .session(
            "POST",
            "/execute/async",
            json!({"script": DRAW_WITH_FONT, "args": [b64(&font), text]}),
        )
        .await;
    let drawn: Vec<String> = drawn
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .map(str::to_owned)
        .collect();
    assert_eq!(drawn[0], "drawn", "{drawn:?}");
    let number = |i: usize| drawn[i].parse::<f64>().unwrap();
    assert!(number(1) > 1000.0 && number(1) == number(2), "widths: {drawn:?}");
    assert!(number(3) > 2000.0, "the text was drawn: {drawn:?}");

    // A third-party document (ofdrw's helloworld.ofd) sealed through the API: its own text and
    // the stamp.
    let (status, sealed) = send(
        &http,
        &server,
        &format!("/v1/seals/{es_id}/sign-ofd"),
        "demo-authority-sm2",
        &json!({"ofd": b64(&vector("ofd-ofdrw/helloworld.ofd")), "page": 1, "x": 100, "y": 60}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sealed}");
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(sealed["ofd"].as_str().unwrap())
        .unwrap();
    let (text, red) = render(&driver, "helloworld-sealed", &sealed, 1).await;
    assert!(text.contains("你好呀，OFDReader&Writer！"), "{text}");
    assert!(red > 1500, "the stamp is drawn: {red} red pixels");
    driver.session("DELETE", "", Value::Null).await;
}
