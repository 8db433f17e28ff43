//! The dashboard: static files from `dashboard/` embedded in the binary (release builds; debug
//! builds read them from disk at run time), with the SPA fallback (unknown non-API paths get
//! `index.html`).
//!
//! Cache scheme, without a build step: `index.html` names its assets as
//! `/assets/v-__ASSET_VERSION__/app.js`; when serving it, the placeholder is replaced by the
//! *asset version*, a hash over every embedded file's name and content. `/assets/v-<hash>/<path>`
//! maps back to the embedded `<path>`. With the current hash the answer is cached for a year
//! (`immutable`): a new build with any changed file has a new hash and so new URLs. Relative ES
//! module imports (`./api.js`) inherit the versioned prefix. A request with an old or unknown hash
//! (a page loaded before an upgrade) still gets the current file, but with `no-cache`, so nothing
//! stale is ever pinned. `index.html` itself and files at their plain paths are `no-cache`.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "dashboard/"]
#[exclude = "node_modules/*"]
#[exclude = "tests/*"]
#[exclude = "package*.json"]
struct Assets;

/// Content-Security-Policy of every dashboard response: nothing from third-party hosts, no
/// inline scripts or styles.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// Placeholder in `index.html` replaced by the asset version.
const VERSION_PLACEHOLDER: &str = "__ASSET_VERSION__";
/// URL prefix of versioned assets.
const ASSET_PREFIX: &str = "assets/v-";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

fn compute_version() -> String {
    let mut names: Vec<Cow<'static, str>> = Assets::iter().collect();
    names.sort();
    let mut h = Sha256::new();
    for name in names {
        if let Some(f) = Assets::get(&name) {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(f.metadata.sha256_hash());
        }
    }
    hex::encode(&h.finalize()[..6])
}

/// Hash of every embedded file (12 hex digits). Computed once in release builds; debug builds
/// read the files from disk at run time, so there it follows edits.
pub fn asset_version() -> String {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if cfg!(debug_assertions) {
        return compute_version();
    }
    V.get_or_init(compute_version).clone()
}

/// A file to send: its type, bytes and an entity tag for revalidation of `no-cache` answers.
struct Found {
    mime: String,
    body: Vec<u8>,
    etag: String,
}

fn respond(found: Found, cache: &'static str, req: &HeaderMap) -> Response {
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == found.etag));
    let mut resp = if fresh {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(found.body))
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&found.mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&found.etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

fn find(path: &str) -> Option<Found> {
    let f = Assets::get(path)?;
    let hash = hex::encode(&f.metadata.sha256_hash()[..12]);
    if path == "index.html" {
        let version = asset_version();
        let html = String::from_utf8_lossy(&f.data).replace(VERSION_PLACEHOLDER, &version);
        return Some(Found {
            mime: "text/html; charset=utf-8".into(),
            body: html.into_bytes(),
            etag: format!("\"{hash}-{version}\""),
        });
    }
    let mime = f.metadata.mimetype().to_string();
    let mime = if mime.starts_with("text/") || mime.ends_with("javascript") {
        format!("{mime}; charset=utf-8")
    } else {
        mime
    };
    Some(Found {
        mime,
        body: f.data.into_owned(),
        etag: format!("\"{hash}\""),
    })
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// Serves `dashboard/` at `/`.
pub async fn serve_dashboard(uri: Uri, req: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    if let Some(rest) = path.strip_prefix(ASSET_PREFIX) {
        let (version, inner) = rest.split_once('/').unwrap_or((rest, ""));
        if inner.is_empty() || inner == "index.html" {
            return not_found();
        }
        let cache = if version == asset_version() {
            IMMUTABLE
        } else {
            NO_CACHE
        };
        return match find(inner) {
            Some(f) => respond(f, cache, &req),
            None => not_found(),
        };
    }
    if let Some(f) = find(path) {
        return respond(f, NO_CACHE, &req);
    }
    // A missing file with an extension is a 404; anything else is a client-side route.
    let last = path.rsplit('/').next().unwrap_or("");
    if last.contains('.') || path.starts_with("assets/") {
        return not_found();
    }
    match find("index.html") {
        Some(f) => respond(f, NO_CACHE, &req),
        None => (StatusCode::NOT_FOUND, "dashboard not built").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(path: &str) -> Response {
        serve_dashboard(path.parse().unwrap(), HeaderMap::new()).await
    }

    fn cache(r: &Response) -> &str {
        r.headers()[header::CACHE_CONTROL].to_str().unwrap()
    }

    #[tokio::test]
    async fn index_names_versioned_assets_and_they_are_immutable() {
        let v = asset_version();
        assert_eq!(v.len(), 12);
        let r = get("/").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(cache(&r), "no-cache");
        assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(!html.contains(VERSION_PLACEHOLDER));
        assert!(html.contains(&format!("/assets/v-{v}/app.js")));

        let r = get(&format!("/assets/v-{v}/app.js")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(cache(&r), IMMUTABLE);
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .contains("javascript")
        );
        // An old version still gets the current file, never pinned.
        let r = get("/assets/v-000000000000/app.js").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(cache(&r), "no-cache");
        // Unknown files are 404s; client routes get index.html.
        assert_eq!(get(&format!("/assets/v-{v}/nope.js")).await.status(), 404);
        assert_eq!(
            get(&format!("/assets/v-{v}/index.html")).await.status(),
            404
        );
        assert_eq!(get("/nope.js").await.status(), 404);
        let r = get("/sets/1").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(cache(&r), "no-cache");
        // Revalidation of no-cache answers is cheap: a matching ETag gets a 304.
        let etag = r.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        let r = serve_dashboard("/".parse().unwrap(), h).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn the_csp_allows_nothing_inline_and_no_other_host() {
        assert!(!CSP.contains("unsafe"));
        assert!(!CSP.contains("http"));
        assert!(CSP.contains("script-src 'self'"));
        assert!(CSP.contains("style-src 'self'"));
    }
}
