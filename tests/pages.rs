//! The pages for people, as a browser and a careful visitor see them, on a really started node:
//! every page answers with its security headers and working links, fits a 390 px phone screen
//! without sideways scrolling, passes axe-core (the pinned release scripts/axe.sh fetches) with
//! no serious or critical violation, and is photographed at 390×844 and 1280×900 under
//! target/pages/ for review.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::{root, Server, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::json;
use webdriver::Driver;

/// The sizes every page is checked and photographed at: a phone, then a laptop.
const SIZES: [(u32, u32, bool); 2] = [(390, 844, true), (1280, 900, false)];

/// axe-core run in the page: the serious and critical violations, one line each.
fn axe_script() -> String {
    let axe = std::fs::read_to_string(common::installed("axe.sh")).unwrap();
    format!(
        "const done = arguments[arguments.length - 1];\n{axe}\n\
         axe.run(document).then((r) => done(r.violations\
           .filter((v) => v.impact === 'serious' || v.impact === 'critical')\
           .map((v) => `${{v.id}} (${{v.impact}}): ${{v.help}} — ${{v.nodes.map((n) => n.target.join(' ')).join(', ')}}`)),\
           (e) => done([`axe failed: ${{e}}`]));"
    )
}

/// Checks the page at `path` in the browser at both sizes, and writes its screenshots.
async fn check_in_browser(driver: &Driver, server: &Server, path: &str, name: &str) {
    let axe = axe_script();
    let dir = root().join("target/pages");
    std::fs::create_dir_all(&dir).unwrap();
    for (width, height, mobile) in SIZES {
        driver.viewport(width, height, mobile).await;
        driver.session("POST", "/url", json!({ "url": server.at(path) })).await;
        // The stylesheet applies (the Content-Security-Policy lets this origin's in).
        let banner = driver
            .execute("return getComputedStyle(document.querySelector('header')).backgroundColor")
            .await;
        assert_eq!(banner, "rgb(180, 35, 24)", "{name}: the stylesheet is applied");
        let widths = driver
            .execute("return [document.documentElement.scrollWidth, window.innerWidth]")
            .await;
        let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert_eq!(inner, u64::from(width));
        assert!(
            scroll <= inner,
            "{name} at {width} px scrolls sideways: {scroll} px wide"
        );
        std::fs::write(dir.join(format!("{name}-{width}x{height}.png")), driver.capture().await).unwrap();
        let violations = driver
            .session("POST", "/execute/async", json!({"script": axe, "args": []}))
            .await;
        assert_eq!(violations, json!([]), "{name} at {width} px: axe-core");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_landing_page_says_what_the_node_is_and_sends_each_audience_on() {
    let dir = TempDir::new("pages");
    let server = Server::start(&dir.0);
    let http = Client::new();

    let r = http.get(server.at("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let headers = r.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<html lang="zh-CN">"#));
    // What the node holds, from its registry: the demo's licence types by name, its authorities.
    for text in [
        "营业执照",
        "登记的发证机关",
        "持证人",
        "办事部门",
        "发证机关",
        "审计人员",
        "运维人员",
    ] {
        assert!(html.contains(text), "the landing page shows {text}");
    }
    let catalogue = common::get_json(&http, &server, "/v1/licence-types", "demo-operator").await;
    for licence_type in catalogue["licence_types"].as_array().unwrap() {
        assert!(html.contains(licence_type["name"].as_str().unwrap()), "{licence_type}");
    }
    // No inline script or style for the policy to block, and every link leads somewhere.
    assert!(!html.contains("<script") && !html.contains("style="), "{html}");
    let links: Vec<&str> = html
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(
        links.contains(&"/objections") && links.contains(&"/assets/site.css"),
        "{links:?}"
    );
    for link in links {
        let status = http.get(server.at(link)).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "the link {link}");
    }

    let driver = Driver::start().await;
    check_in_browser(&driver, &server, "/", "home").await;
}
