//! The configuration file (TOML) and the `--demo` settings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use zhengyin_http::{HttpConfig, ServeLimits, TokenConfig};

/// The whole configuration.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The sled database directory (the embedded store, when `database` is absent).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// A PostgreSQL URL (`postgres://user:password@host:port/database`): this process is then
    /// one frontend of a cluster over that database, and `data_dir` is not used.
    #[serde(default)]
    pub database: Option<String>,
    /// Where this node remembers the largest checkpoint it published, outside its data, so that
    /// restoring old data cannot roll it back. Default: beside the data folder,
    /// `<data_dir>.checkpoint`; on PostgreSQL `<data_dir>.<database>.checkpoint`, where
    /// `<database>` is a short hash of the database's hosts and name (so that one folder serves
    /// frontends of different databases). Every frontend of a cluster keeps its own.
    #[serde(default)]
    pub checkpoint_mark: Option<PathBuf>,
    /// The embedded store's page cache, MiB: what bounds the node's memory as its data grows.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
    /// Largest request body, bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// Most licences in one batch verification.
    #[serde(default = "default_batch_limit")]
    pub batch_limit: usize,
    /// Largest body of a batch verification, bytes.
    #[serde(default = "default_batch_body_limit")]
    pub batch_body_limit: usize,
    /// Entries in the verified-signature cache (0 turns it off).
    #[serde(default = "default_signature_cache")]
    pub signature_cache: usize,
    /// Licences whose parse and canonical hashes are remembered, by their bytes (0 turns it off).
    #[serde(default = "default_prepared_cache")]
    pub prepared_cache: usize,
    /// How long a client may take to send request headers, or stay idle between requests, ms.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// How long a client may take to send a request body, ms (408 after).
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// The most connections open at once (further ones wait in the listen backlog).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// PEM file of trust anchors (root CA certificates).
    pub trust_anchors: PathBuf,
    /// The keys of the authorities this node signs for: PKCS#8 PEM files, `pkcs11:` URIs
    /// (RFC 7512) of keys in an HSM, or `sdf:` URIs of SM2 keys in a GM/T 0018 device;
    /// `{ key = "…", certificate = "…pem" }` also checks at start that the key is the
    /// certificate's.
    #[serde(default)]
    pub keys: Vec<AuthorityKey>,
    /// API tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// The signature log's origin line (its name in checkpoints).
    #[serde(default = "default_log_origin")]
    pub log_origin: String,
    /// The Ed25519 key that signs the log's checkpoints: a PKCS#8 PEM file or a `pkcs11:` URI.
    pub log_key: String,
    /// The working-day calendar objection deadlines count in: `holidays` and make-up
    /// `workdays`, as `YYYY-MM-DD` lists.
    #[serde(default)]
    pub calendar: zhengyin_model::Calendar,
    /// The seal maker (制章者), if this node makes e-seals.
    #[serde(default)]
    pub seal_maker: Option<SealMakerConfig>,
    /// The key (Ed25519 recommended; a PEM file or a `pkcs11:` URI) that signs presentation
    /// tokens (亮证), annotated copies and webhook bodies; holders cannot present licences when
    /// absent.
    #[serde(default)]
    pub token_key: Option<String>,
    /// Largest evidence file an objector may upload, bytes (default 2 MiB; the request carries
    /// it base64-encoded, within `batch_body_limit`).
    #[serde(default = "default_evidence_limit")]
    pub evidence_limit: usize,
    /// Where departments are told about their objections: `[[webhooks]] department = "…" url = "…"`.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// The identity platforms whose holder tokens (JWTs) this node accepts; none when absent.
    #[serde(default)]
    pub identity: Option<IdentityConfig>,
    /// The nodes this one aggregates (归集), if any.
    #[serde(default)]
    pub sync: SyncConfig,
    /// The node above this one, whose ownership map it follows, if any.
    #[serde(default)]
    pub federation: Option<FederationConfig>,
    /// The trust list this node recognises other regions by (互通互认), if any.
    #[serde(default)]
    pub trust_list: Option<TrustListConfig>,
    /// A signed trust list this node publishes at `GET /v1/federation/trust-list` (the scheme
    /// operator's node), read at every request: replace the file to publish a new list.
    #[serde(default)]
    pub publish_trust_list: Option<PathBuf>,
    /// The TrueType font licence files embed (the subset of it each file's text needs), if any.
    #[serde(default)]
    pub licence_font: Option<LicenceFontConfig>,
}

/// The font of licence files: a `.ttf`, or one face of a `.ttc` collection.
///
/// ```toml
/// licence_font = { file = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", face = 0 }
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceFontConfig {
    /// The font file (TrueType outlines).
    pub file: PathBuf,
    /// Which face of a collection (0 for a single font).
    #[serde(default)]
    pub face: u32,
}

/// The font the demo's licence files embed: WenQuanYi Micro Hei (free: Apache-2.0 or GPLv3 with
/// a font exception) where Debian's fonts-wqy-microhei put it; none elsewhere.
pub const DEMO_LICENCE_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";

/// The trust list this node follows (互通互认): it follows each other region's logs the list
/// names and verifies their licences, chained to that region's anchors.
///
/// ```toml
/// [trust_list]
/// url = "http://10.0.0.9:8080"            # the node publishing it
/// key = "national-operator.pub.pem"       # the scheme operator's public key (PEM)
/// token_file = "regions.token"            # a `node` token the regions' nodes accept (a secret)
/// # refresh_seconds = 60
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustListConfig {
    /// Base URL of the node publishing it.
    pub url: String,
    /// PEM file of the operator's public key.
    pub key: PathBuf,
    /// File holding a `node` token of the regions' nodes.
    pub token_file: PathBuf,
    /// How often the list is fetched again, seconds.
    #[serde(default = "default_trust_list_refresh")]
    pub refresh_seconds: u64,
}

fn default_trust_list_refresh() -> u64 {
    60
}

/// The node above this one in the federation (a city's province), whose signed ownership map
/// says which node owns each authority; this node refuses to register the others' (409).
///
/// ```toml
/// [federation]
/// upstream_url = "http://10.0.0.1:8080"
/// upstream_key = "zhengyin.example/province-220000+5e6f7a8b+AR…"   # its log verifier key
/// token_file = "province.token"      # a `node` token of the upstream node (a secret)
/// # refresh_seconds = 30
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// Its base URL.
    pub upstream_url: String,
    /// Its log verifier key (`<origin>+<hash>+<key>`).
    pub upstream_key: String,
    /// File holding a `node` token of the upstream node.
    pub token_file: PathBuf,
    /// How often its map is fetched again, seconds.
    #[serde(default = "default_ownership_refresh")]
    pub refresh_seconds: u64,
}

fn default_ownership_refresh() -> u64 {
    30
}

/// Aggregation of other nodes:
///
/// ```toml
/// [sync]
/// # max_staleness_seconds = 300   # older source data: `status_freshness` (INDETERMINATE with ?fresh=true)
/// # poll_interval_ms = 500
/// # page_size = 1000
/// [[sync.sources]]
/// origin = "zhengyin.example/city-220100"      # the origin line of its checkpoints
/// url = "http://10.0.0.5:8080"
/// log_key = "zhengyin.example/city-220100+1a2b3c4d+AR…"   # its verifier key, obtained out of band
/// trust_anchors = "city-220100-roots.pem"     # roots of its authorities' certificates
/// token_file = "city-220100.token"            # a `node` token of that node (a secret)
/// ```
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// How old a source's data may be before its licences' status is stale, seconds.
    #[serde(default = "default_max_staleness")]
    pub max_staleness_seconds: i64,
    /// Wait between rounds, milliseconds.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_ms: u64,
    /// Entries per page (at most 1000).
    #[serde(default = "default_page_size")]
    pub page_size: u64,
    /// The sources.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            max_staleness_seconds: default_max_staleness(),
            poll_interval_ms: default_poll_interval(),
            page_size: default_page_size(),
            sources: Vec::new(),
        }
    }
}

/// One source node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The origin line of its checkpoints.
    pub origin: String,
    /// Its base URL.
    pub url: String,
    /// Its log verifier key (`<origin>+<hash>+<key>`).
    pub log_key: String,
    /// PEM file of the trust anchors of its authorities.
    pub trust_anchors: PathBuf,
    /// File holding a `node` token of the source.
    pub token_file: PathBuf,
}

fn default_max_staleness() -> i64 {
    zhengyin_engine::sync::DEFAULT_MAX_STALENESS.whole_seconds()
}

fn default_poll_interval() -> u64 {
    500
}

fn default_page_size() -> u64 {
    zhengyin_engine::MAX_ENTRIES_PER_PAGE
}

/// One department's webhook for objection notifications.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The department, as in its token.
    pub department: String,
    /// An `http` or `https` URL.
    pub url: String,
}

impl std::str::FromStr for WebhookConfig {
    type Err = String;

    /// `DEPARTMENT=URL`, as given on the command line.
    fn from_str(s: &str) -> Result<Self, String> {
        let (department, url) = s.split_once('=').ok_or("expected DEPARTMENT=URL")?;
        Ok(Self {
            department: department.to_owned(),
            url: url.to_owned(),
        })
    }
}

/// Holder sign-in:
///
/// ```toml
/// [identity]
/// audience = "zhengyin"                 # the `aud` tokens must name
/// # holder_claim = "holder_code"        # claim with the holder code
/// # holder_type_claim = "holder_code_type"
/// # max_lifetime_seconds = 86400
/// [[identity.issuers]]
/// issuer = "https://id.example.gov.cn"
/// keys = ["identity-platform.pub.pem"]  # PEM public keys (EdDSA, ES256, RS256, SM2)
/// # Holders sign in on the pages through the platform (OpenID Connect, authorization code):
/// [identity.sign_in]
/// authorize_url = "https://id.example.gov.cn/oauth2/authorize"
/// token_url = "https://id.example.gov.cn/oauth2/token"
/// client_id = "zhengyin-city-node"
/// # client_secret_file = "/etc/zhengyin/oidc-client-secret"
/// # redirect_url = "https://zhengyin.example.gov.cn/signin/callback"  # else http://<Host>/signin/callback
/// ```
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The `aud` a token must name.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// The claim carrying the holder code.
    #[serde(default)]
    pub holder_claim: Option<String>,
    /// The claim carrying the holder code type.
    #[serde(default)]
    pub holder_type_claim: Option<String>,
    /// Longest remaining lifetime accepted, seconds.
    #[serde(default)]
    pub max_lifetime_seconds: Option<i64>,
    /// The identity platforms.
    pub issuers: Vec<IdentityIssuerConfig>,
    /// How holders sign in on the pages; absent: they cannot (the API still takes their tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<SignInFileConfig>,
    /// The key this node signs ID tokens with when it plays the demo identity platform itself
    /// (`serve --demo` only: an EXAMPLE key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demo_platform_key: Option<String>,
}

/// The OpenID Connect provider holders sign in with (see [`IdentityConfig`]).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInFileConfig {
    /// Its authorization endpoint (absolute, or a path on this node).
    pub authorize_url: String,
    /// Its token endpoint (absolute, or a path on this node: the demo platform).
    pub token_url: String,
    /// This node's client id there.
    pub client_id: String,
    /// A file holding this node's client secret there (kept out of the configuration text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// This node's callback as registered there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

/// One identity platform.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityIssuerConfig {
    /// Its `iss`.
    pub issuer: String,
    /// PEM files of its public keys.
    pub keys: Vec<PathBuf>,
}

fn default_audience() -> String {
    "zhengyin".to_owned()
}

/// The `iss` of the demo identity platform.
pub const DEMO_IDENTITY_ISSUER: &str = "https://id.example.gov.cn/demo";
/// Where the demo identity platform's pages are, on the demo node itself.
const DEMO_AUTHORIZE_PATH: &str = "/demo/identity/authorize";
const DEMO_TOKEN_PATH: &str = "/demo/identity/token";

impl IdentityConfig {
    /// Loads the keys into the engine's form.
    pub fn load(&self) -> anyhow::Result<zhengyin_engine::identity::Identity> {
        use zhengyin_engine::identity::{Identity, IdentityIssuer};
        let defaults = Identity::default();
        let mut issuers = Vec::new();
        for i in &self.issuers {
            let mut keys = Vec::new();
            for path in &i.keys {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                let blocks = zhengyin_crypto::pem::decode_label(&text, "PUBLIC KEY")
                    .with_context(|| format!("{}: PEM", path.display()))?;
                anyhow::ensure!(!blocks.is_empty(), "{}: no PUBLIC KEY block", path.display());
                for der in blocks {
                    let key = zhengyin_crypto::PublicKey::from_spki_der(&der)
                        .with_context(|| format!("{}: public key", path.display()))?;
                    anyhow::ensure!(
                        zhengyin_crypto::jws::alg_name(key.algorithm()).is_some(),
                        "{}: this key type cannot sign tokens",
                        path.display()
                    );
                    keys.push(key);
                }
            }
            issuers.push(IdentityIssuer {
                issuer: i.issuer.clone(),
                keys,
            });
        }
        Ok(Identity {
            issuers,
            audience: self.audience.clone(),
            holder_claim: self.holder_claim.clone().unwrap_or(defaults.holder_claim),
            holder_type_claim: self.holder_type_claim.clone().unwrap_or(defaults.holder_type_claim),
            max_lifetime: self
                .max_lifetime_seconds
                .map_or(defaults.max_lifetime, time::Duration::seconds),
        })
    }
}

/// The seal maker's SM2 key and certificate chain.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealMakerConfig {
    /// The SM2 key: a PKCS#8 PEM file (SM2 keys do not sign through PKCS#11).
    pub key: String,
    /// PEM files of its certificate chain, leaf first.
    pub certificates: Vec<PathBuf>,
}

/// One authority key: where it is, and optionally the certificate it must match.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuthorityKey {
    /// A PEM file, a `pkcs11:` or an `sdf:` URI.
    Key(String),
    /// The same, with the PEM certificate the key must be the subject key of.
    WithCertificate {
        /// A PEM file, a `pkcs11:` or an `sdf:` URI.
        key: String,
        /// The authority's certificate (PEM).
        certificate: PathBuf,
    },
}

impl AuthorityKey {
    /// Where the key is.
    pub fn key(&self) -> &str {
        match self {
            Self::Key(key) | Self::WithCertificate { key, .. } => key,
        }
    }
}

/// A key name relative to `base` when it is a file; device URIs are taken as written.
fn rebase_key(base: &Path, key: &str) -> String {
    if zhengyin_keys::KeyLocator::is_device(key) {
        key.to_owned()
    } else {
        base.join(key).display().to_string()
    }
}

fn default_log_origin() -> String {
    "zhengyin.example/node".to_owned()
}

/// A short name for the database a URL points at — its hosts, ports and name, without the user,
/// password or options — that is the same across restarts and differs between databases.
fn database_identity(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, hosts)| hosts);
    let name = path.split(['?', '#']).next().unwrap_or_default();
    let digest = zhengyin_crypto::hash::sha256(format!("{hosts}/{name}").as_bytes());
    hex::encode(&digest[..6])
}

fn default_cache_mb() -> u64 {
    zhengyin_store::DEFAULT_CACHE_BYTES >> 20
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_header_read_timeout_ms() -> u64 {
    millis(ServeLimits::default().header_read_timeout)
}

fn default_body_read_timeout_ms() -> u64 {
    millis(ServeLimits::default().body_read_timeout)
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn default_max_connections() -> usize {
    ServeLimits::default().max_connections
}

impl Config {
    /// The connection limits, as [`zhengyin_http::serve`] takes them.
    pub fn serve_limits(&self) -> ServeLimits {
        ServeLimits {
            header_read_timeout: std::time::Duration::from_millis(self.header_read_timeout_ms.max(1)),
            body_read_timeout: std::time::Duration::from_millis(self.body_read_timeout_ms.max(1)),
            max_connections: self.max_connections.max(1),
        }
    }
}

fn default_body_limit() -> usize {
    HttpConfig::default().body_limit
}

fn default_batch_limit() -> usize {
    HttpConfig::default().batch_limit
}

fn default_batch_body_limit() -> usize {
    HttpConfig::default().batch_body_limit
}

fn default_evidence_limit() -> usize {
    zhengyin_engine::DEFAULT_EVIDENCE_LIMIT
}

fn default_signature_cache() -> usize {
    zhengyin_engine::DEFAULT_SIGNATURE_CACHE
}

fn default_prepared_cache() -> usize {
    zhengyin_engine::DEFAULT_PREPARED_CACHE
}

impl Config {
    /// Reads a TOML file; relative paths in it are relative to the file's folder.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: Config = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.trust_anchors = base.join(&config.trust_anchors);
        for key in &mut config.keys {
            *key = match key {
                AuthorityKey::Key(k) => AuthorityKey::Key(rebase_key(base, k)),
                AuthorityKey::WithCertificate { key, certificate } => AuthorityKey::WithCertificate {
                    key: rebase_key(base, key),
                    certificate: base.join(&*certificate),
                },
            };
        }
        config.log_key = rebase_key(base, &config.log_key);
        config.data_dir = base.join(&config.data_dir);
        config.checkpoint_mark = config.checkpoint_mark.map(|m| base.join(m));
        if let Some(maker) = &mut config.seal_maker {
            maker.key = rebase_key(base, &maker.key);
            maker.certificates = maker.certificates.iter().map(|c| base.join(c)).collect();
        }
        config.token_key = config.token_key.map(|k| rebase_key(base, &k));
        if let Some(identity) = &mut config.identity {
            for issuer in &mut identity.issuers {
                issuer.keys = issuer.keys.iter().map(|k| base.join(k)).collect();
            }
        }
        for source in &mut config.sync.sources {
            source.trust_anchors = base.join(&source.trust_anchors);
            source.token_file = base.join(&source.token_file);
        }
        if let Some(federation) = &mut config.federation {
            federation.token_file = base.join(&federation.token_file);
        }
        if let Some(list) = &mut config.trust_list {
            list.key = base.join(&list.key);
            list.token_file = base.join(&list.token_file);
        }
        config.publish_trust_list = config.publish_trust_list.map(|p| base.join(p));
        if let Some(font) = config.licence_font.as_mut() {
            font.file = base.join(&font.file);
        }
        Ok(config)
    }

    /// Where the trust list this node holds is kept across restarts (so an older one is refused
    /// after a restart too): beside the checkpoint mark, `….trust-list`.
    pub fn held_trust_list(&self) -> PathBuf {
        self.checkpoint_mark().with_extension("trust-list")
    }

    /// The checkpoint mark's file (see `checkpoint_mark`).
    pub fn checkpoint_mark(&self) -> PathBuf {
        self.checkpoint_mark.clone().unwrap_or_else(|| {
            let mut name = self.data_dir.file_name().unwrap_or_default().to_os_string();
            if let Some(url) = &self.database {
                name.push(format!(".{}", database_identity(url)));
            }
            name.push(".checkpoint");
            self.data_dir.with_file_name(name)
        })
    }

    /// The demo configuration: the example PKI in `keys_dir` and fixed example tokens.
    pub fn demo(keys_dir: &Path) -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            database: None,
            checkpoint_mark: None,
            cache_mb: default_cache_mb(),
            body_limit: default_body_limit(),
            batch_limit: default_batch_limit(),
            batch_body_limit: default_batch_body_limit(),
            signature_cache: default_signature_cache(),
            prepared_cache: default_prepared_cache(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            max_connections: default_max_connections(),
            trust_anchors: keys_dir.join("root-ca.pem"),
            // The ed25519 authority's next key signs once its certificate is registered
            // (key rotation; see keys-example/README.md).
            keys: crate::demo::ALGORITHMS
                .iter()
                .map(|(alg, _)| format!("authority-{alg}.key"))
                .chain(["authority-ed25519-next.key".to_owned()])
                .map(|file| AuthorityKey::Key(rebase_key(keys_dir, &file)))
                .collect(),
            tokens: crate::demo::tokens(),
            log_origin: "zhengyin.example/demo".to_owned(),
            log_key: rebase_key(keys_dir, "log-ed25519.key"),
            calendar: zhengyin_model::Calendar::default(),
            seal_maker: Some(SealMakerConfig {
                key: rebase_key(keys_dir, "seal-maker.key"),
                certificates: vec![keys_dir.join("seal-maker.pem"), keys_dir.join("issuing-ca.pem")],
            }),
            token_key: Some(rebase_key(keys_dir, "token-ed25519.key")),
            webhooks: Vec::new(),
            evidence_limit: default_evidence_limit(),
            identity: Some(IdentityConfig {
                audience: default_audience(),
                holder_claim: None,
                holder_type_claim: None,
                max_lifetime_seconds: None,
                issuers: vec![IdentityIssuerConfig {
                    issuer: DEMO_IDENTITY_ISSUER.to_owned(),
                    keys: vec![keys_dir.join("identity-platform-ed25519.pub.pem")],
                }],
                sign_in: Some(SignInFileConfig {
                    authorize_url: DEMO_AUTHORIZE_PATH.to_owned(),
                    token_url: DEMO_TOKEN_PATH.to_owned(),
                    client_id: "zhengyin-demo".to_owned(),
                    client_secret_file: None,
                    redirect_url: None,
                }),
                demo_platform_key: Some(rebase_key(keys_dir, "identity-platform-ed25519.key")),
            }),
            sync: SyncConfig::default(),
            federation: None,
            trust_list: None,
            publish_trust_list: None,
            licence_font: Path::new(DEMO_LICENCE_FONT).exists().then(|| LicenceFontConfig {
                file: DEMO_LICENCE_FONT.into(),
                face: 0,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::{database_identity, Config};

    /// Every leaf key's dotted path (an array's items share the array's path).
    fn paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    paths(v, &path, out);
                }
            }
            Value::Array(items) if items.iter().any(Value::is_object) => {
                for item in items {
                    paths(item, prefix, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }

    /// docs/operations.md's configuration reference parses as a configuration (so it names no key
    /// the server does not read) and names every key the configuration has (a commented-out
    /// `# key = …` line counts).
    #[test]
    fn the_documented_configuration_names_every_key_and_only_real_ones() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md")).unwrap();
        let block = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a toml block in docs/operations.md");
        let config: Config = toml::from_str(block).unwrap_or_else(|e| panic!("the documented configuration: {e}"));
        let mut documented = BTreeSet::new();
        let parsed: Value = serde_json::to_value(toml::from_str::<toml::Value>(block).unwrap()).unwrap();
        paths(&parsed, "", &mut documented);
        for line in block.lines() {
            if let Some((key, _)) = line.trim_start().strip_prefix("# ").and_then(|l| l.split_once(" = ")) {
                documented.insert(key.trim().to_owned());
            }
        }
        let mut read = BTreeSet::new();
        paths(&serde_json::to_value(&config).unwrap(), "", &mut read);
        let missing: Vec<_> = read.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "keys the server reads that the reference does not show: {missing:?}"
        );
    }

    #[test]
    fn a_database_is_named_by_its_hosts_and_name_not_its_credentials() {
        let a =
            database_identity("postgres://zhengyin:secret@db1:5432,db2:5432/zhengyin?target_session_attrs=read-write");
        assert_eq!(
            a,
            database_identity("postgres://other:changed@db1:5432,db2:5432/zhengyin")
        );
        assert_ne!(
            a,
            database_identity("postgres://zhengyin:secret@db1:5432,db2:5432/zhengyin_test")
        );
        assert_ne!(a, database_identity("postgres://zhengyin:secret@db3:5432/zhengyin"));
        assert_eq!(a.len(), 12);
    }
}
