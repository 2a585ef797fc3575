//! Nodes of the tests' own making for sync and federation: engines over their own stores and
//! log origins, and feeds that read one engine for another as the HTTP API would.

use std::sync::Arc;

use time::macros::datetime;
use zhengyin_crypto::FileKey;
use zhengyin_engine::sync::{Feed, FeedError, SyncObject, SyncSource};
use zhengyin_engine::{Engine, EngineError, FixedClock};
use zhengyin_model::{LicenceType, TypeCode};
use zhengyin_store::{SledStore, Store};
use zhengyin_tlog::{Hash, NoteVerifier};

use super::*;

/// Reads the city engine directly, publishing a checkpoint first as the city's timer would.
pub struct EngineFeed {
    pub city: Arc<Engine>,
}

pub fn feed_error(e: EngineError) -> FeedError {
    FeedError(e.to_string())
}

impl EngineFeed {
    /// Publishes a checkpoint, as a node's timer would, and returns the latest.
    pub async fn checkpoint_of(engine: &Engine) -> Result<String, FeedError> {
        engine.publish_checkpoint().await.map_err(feed_error)?;
        Ok(engine.latest_checkpoint().map_err(feed_error)?.unwrap().1)
    }
}

impl Feed for EngineFeed {
    async fn checkpoint(&self) -> Result<String, FeedError> {
        Self::checkpoint_of(&self.city).await
    }
    async fn consistency(&self, first: u64, second: u64) -> Result<Vec<Hash>, FeedError> {
        self.city.consistency_proof(first, second).map_err(feed_error)
    }
    async fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, FeedError> {
        self.city.inclusion_proof(index, size).map_err(feed_error)
    }
    async fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, FeedError> {
        self.city.log_entries(start, end).map_err(feed_error)
    }
    async fn objects(&self, start: u64, end: u64) -> Result<Vec<SyncObject>, FeedError> {
        self.city.sync_objects(start, end).map_err(feed_error)
    }
    async fn licence_type(&self, code: &TypeCode) -> Result<LicenceType, FeedError> {
        self.city
            .licence_type(code)
            .ok_or_else(|| FeedError("no such type".into()))
    }
}

pub struct Province {
    pub engine: Engine,
    pub clock: Arc<FixedClock>,
    pub store: Arc<SledStore>,
    pub _dir: tempfile_dir::Dir,
}

pub async fn province() -> Province {
    let dir = tempfile_dir::new();
    let store = Arc::new(SledStore::open(&dir.0.join("db")).unwrap());
    let clock = Arc::new(FixedClock::new(datetime!(2026-11-22 08:00 UTC)));
    let engine = engine_over(Arc::clone(&store), Arc::clone(&clock)).await;
    Province {
        engine,
        clock,
        store,
        _dir: dir,
    }
}

/// Serves a node of the tests' own making, as its HTTP API would.
pub struct NodeFeed(pub Arc<Province>);

impl Feed for NodeFeed {
    async fn checkpoint(&self) -> Result<String, FeedError> {
        EngineFeed::checkpoint_of(&self.0.engine).await
    }
    async fn consistency(&self, first: u64, second: u64) -> Result<Vec<Hash>, FeedError> {
        self.0.engine.consistency_proof(first, second).map_err(feed_error)
    }
    async fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, FeedError> {
        self.0.engine.inclusion_proof(index, size).map_err(feed_error)
    }
    async fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, FeedError> {
        self.0.engine.log_entries(start, end).map_err(feed_error)
    }
    async fn objects(&self, start: u64, end: u64) -> Result<Vec<SyncObject>, FeedError> {
        self.0.engine.sync_objects(start, end).map_err(feed_error)
    }
    async fn licence_type(&self, code: &TypeCode) -> Result<LicenceType, FeedError> {
        self.0
            .engine
            .licence_type(code)
            .ok_or_else(|| FeedError("no such type".into()))
    }
}

/// A source named `origin`, its checkpoints signed with the example log key.
pub fn source_named(origin: &str) -> SyncSource {
    let key = FileKey::from_pem_file(&keys_dir().join("log-ed25519.key")).unwrap();
    SyncSource {
        origin: origin.to_owned(),
        verifier: NoteVerifier::new(origin, zhengyin_crypto::Signer::public_key(&key).clone()).unwrap(),
        anchors: anchors(),
        recognition: None,
    }
}

/// An engine over a fresh store whose log has its own origin (the county → city → province chain).
pub async fn node_named(origin: &str) -> Province {
    let dir = tempfile_dir::new();
    let store = Arc::new(SledStore::open(&dir.0.join("db")).unwrap());
    let clock = Arc::new(FixedClock::new(datetime!(2026-11-22 08:00 UTC)));
    let mut log = log_config();
    log.origin = origin.to_owned();
    let engine = Engine::new(
        Arc::clone(&store) as Arc<dyn Store>,
        Arc::clone(&clock) as Arc<dyn zhengyin_engine::Clock>,
        Arc::new(zhengyin_engine::SeededRandom::new(9)),
        anchors(),
        keyring(),
        log,
    )
    .await
    .unwrap();
    Province {
        engine,
        clock,
        store,
        _dir: dir,
    }
}

/// A city of its own origin with the business-licence type and the given example authorities.
pub async fn city_with(origin: &str, algs: &[&str]) -> Arc<Province> {
    let node = node_named(origin).await;
    for (alg, code) in ALGS.iter().filter(|(alg, _)| algs.contains(alg)) {
        register_example(&node.engine, alg, code).await;
    }
    node.engine
        .register_licence_type(business_licence_type())
        .await
        .unwrap();
    Arc::new(node)
}
