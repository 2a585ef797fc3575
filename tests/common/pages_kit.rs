//! What the page tests share: checking a page in the browser (both sizes, no sideways scroll,
//! axe-core, screenshots under target/pages/), signing in there, and a cookie-keeping HTTP
//! visitor for what a browser hides (redirects, headers, forged forms).

#![allow(dead_code)]

use reqwest::{Client, StatusCode};
use serde_json::json;

use super::common::{self, root, Server};
use super::webdriver::Driver;

/// The sizes every page is checked and photographed at: a phone, then a laptop.
pub const SIZES: [(u32, u32, bool); 2] = [(390, 844, true), (1280, 900, false)];

/// axe-core run in the page: the serious and critical violations, one line each.
pub fn axe_script() -> String {
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
pub async fn check_in_browser(driver: &Driver, server: &Server, path: &str, name: &str) {
    driver.session("POST", "/url", json!({ "url": server.at(path) })).await;
    check_here(driver, name).await;
}

/// Checks the page the browser shows (reached by a form, say) at both sizes, and writes its
/// screenshots; leaves the browser at the laptop size.
pub async fn check_here(driver: &Driver, name: &str) {
    let axe = axe_script();
    let dir = root().join("target/pages");
    std::fs::create_dir_all(&dir).unwrap();
    let title = driver.execute("return document.title").await;
    let title = title.as_str().unwrap_or_default();
    assert!(
        title.ends_with(" · 证印") && !title.contains('<') && title.chars().count() < 40,
        "{name}: the title is {title:?}"
    );
    for (width, height, mobile) in SIZES {
        driver.viewport(width, height, mobile).await;
        // The stylesheet applies (the Content-Security-Policy lets this origin's in).
        let banner = driver
            .execute("return getComputedStyle(document.querySelector('header')).backgroundColor")
            .await;
        assert_eq!(banner, "rgb(180, 35, 24)", "{name}: the stylesheet is applied");
        let widths = driver
            .execute("return [document.documentElement.scrollWidth, window.innerWidth]")
            .await;
        let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        // Wider content makes a phone zoom out (a wider layout viewport): name what sticks out.
        let wide = driver
            .execute(&format!(
                "return [...document.querySelectorAll('body *')]\
                   .filter((e) => e.getBoundingClientRect().right > {width} + 0.5)\
                   .map((e) => `${{e.tagName}}.${{e.className}} ${{Math.round(e.getBoundingClientRect().right)}}`)"
            ))
            .await;
        assert_eq!(inner, u64::from(width), "{name} at {width} px: too wide: {wide}");
        assert!(
            scroll <= inner,
            "{name} at {width} px scrolls sideways: {scroll} px wide: {wide}"
        );
        std::fs::write(dir.join(format!("{name}-{width}x{height}.png")), driver.capture().await).unwrap();
        let violations = driver
            .session("POST", "/execute/async", json!({"script": axe, "args": []}))
            .await;
        assert_eq!(violations, json!([]), "{name} at {width} px: axe-core");
    }
}

pub async fn wait_for_path(driver: &Driver, path: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let at = driver.execute("return location.pathname").await;
        if at == path {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the browser stayed at {at}, not {path}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The demo holder a licence is issued to (the first one on the demo identity page).
pub const COMPANY: &str = "91350100M000100Y43";

/// Issues a demo business licence to [`COMPANY`]; its identifier.
pub async fn issue_licence(http: &Client, server: &Server, number: &str) -> String {
    let issued = common::post_json(
        http,
        server,
        "/v1/licences",
        "demo-authority-ed25519",
        &common::business_licence(number),
    )
    .await;
    issued["id"].as_str().unwrap_or_else(|| panic!("{issued}")).to_owned()
}

/// In the browser: signs in through the demo identity platform as demo holder `index`.
pub async fn browser_holder_sign_in(driver: &Driver, server: &Server, index: usize, photograph: bool) {
    driver
        .session("POST", "/url", json!({ "url": server.at("/signin") }))
        .await;
    if photograph {
        check_here(driver, "signin").await;
    }
    driver.click("form[action='/signin/holder'] button").await;
    wait_for_path(driver, "/demo/identity/authorize").await;
    if photograph {
        check_here(driver, "demo-identity").await;
    }
    driver
        .click(&format!("form:has(input[name='holder'][value='{index}']) button"))
        .await;
    wait_for_path(driver, "/holder").await;
}

/// In the browser: signs out, then in as staff with `token`.
pub async fn browser_staff_sign_in(driver: &Driver, server: &Server, token: &str) {
    driver.click("form[action='/signout'] button").await;
    wait_for_path(driver, "/").await;
    driver
        .session("POST", "/url", json!({ "url": server.at("/signin") }))
        .await;
    driver.type_into("#token", token).await;
    driver.click("form[action='/signin/token'] button").await;
}

/// A browser without a browser: follows the sign-in by hand, keeping the session cookie.
pub struct Visitor {
    pub http: Client,
    pub base: String,
    pub cookie: Option<String>,
}

impl Visitor {
    pub fn new(server: &Server) -> Visitor {
        Visitor {
            http: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.url.clone(),
            cookie: None,
        }
    }

    pub async fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> reqwest::Response {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.http.request(method.parse().unwrap(), url);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(form) = form {
            request = request.form(form);
        }
        let r = request.send().await.unwrap();
        if let Some(set) = r.headers().get("set-cookie") {
            self.cookie = Some(set.to_str().unwrap().split(';').next().unwrap().to_owned());
        }
        r
    }

    /// The CSRF token in the page at `path`.
    pub async fn csrf(&mut self, path: &str) -> String {
        let html = self.send("GET", path, None).await.text().await.unwrap();
        html.split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    }

    /// Signs in as demo holder `index`; the callback URL the identity platform sent back.
    pub async fn sign_in_holder(&mut self, index: &str) -> String {
        let csrf = self.csrf("/signin").await;
        let r = self.send("POST", "/signin/holder", Some(&[("csrf", &csrf)])).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let authorize = r.headers()["location"].to_str().unwrap().to_owned();
        let query: Vec<(String, String)> = reqwest::Url::parse(&format!("{}{authorize}", self.base))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        let mut form: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        form.push(("holder", index));
        let r = self.send("POST", "/demo/identity/authorize", Some(&form)).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let callback = r.headers()["location"].to_str().unwrap().to_owned();
        let r = self.send("GET", &callback, None).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
        assert_eq!(r.headers()["location"], "/holder");
        callback
    }
}

impl Visitor {
    /// Posts a multipart form: the CSRF token of `page`, `fields`, and `file` as `name`.
    pub async fn upload(
        &mut self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
        file: (&str, Vec<u8>),
    ) -> reqwest::Response {
        let csrf = self.csrf(page).await;
        let mut form = reqwest::multipart::Form::new().text("csrf", csrf);
        for (name, value) in fields {
            form = form.text((*name).to_owned(), (*value).to_owned());
        }
        form = form.part(
            file.0.to_owned(),
            reqwest::multipart::Part::bytes(file.1).file_name("upload"),
        );
        let mut request = self.http.post(format!("{}{action}", self.base)).multipart(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    pub async fn sign_in_staff(&mut self, token: &str) {
        let csrf = self.csrf("/signin").await;
        let r = self
            .send("POST", "/signin/token", Some(&[("csrf", &csrf), ("token", token)]))
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{token}");
    }
}
