//! Sync between nodes at the engine level: a city engine is the source, a province engine pulls
//! it through a [`Feed`] that calls the city directly (the HTTP feed is tested end to end in the
//! root package). Divergent sources are simulated by feeds that alter what the city serves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::nodes::*;
use common::*;
use serde_json::{json, Value};
use time::macros::datetime;
use zhengyin_crypto::{FileKey, TrustAnchors};
use zhengyin_engine::sync::{Feed, FeedError, SyncError, SyncObject, SyncSource};
use zhengyin_engine::{Engine, EngineError, RevokeRequest, SuspendRequest, UpdateRequest, VerifyOptions};
use zhengyin_model::{IncidentKind, LicenceId, LicenceType, RevocationReason, SealState, Status, TypeCode, Verdict};
use zhengyin_store::prelude::*;
use zhengyin_store::SledStore;
use zhengyin_tlog::{sign_checkpoint, Checkpoint, Hash, NoteVerifier};

/// Serves the city, altered by `alter`.
struct AlteredFeed<F> {
    inner: EngineFeed,
    alter: F,
}

#[derive(Clone, Copy)]
enum Alter {
    /// Rewrites the first entry of every entries answer.
    Entry,
    /// Changes one byte of every licence served.
    Licence,
    /// Serves a note of the same size with another root, signed with the city's real log key.
    Fork,
    /// Renames every seal in its record (the signed seal keeps its name).
    SealRecord,
    /// Serves a signed checkpoint one entry smaller than the real one.
    Rollback,
}

impl Feed for AlteredFeed<Alter> {
    async fn checkpoint(&self) -> Result<String, FeedError> {
        let note = self.inner.checkpoint().await?;
        if !matches!(self.alter, Alter::Fork | Alter::Rollback) {
            return Ok(note);
        }
        let body = note.split("\n\n").next().unwrap().to_owned() + "\n";
        let mut checkpoint = Checkpoint::parse_body(&body).unwrap();
        if matches!(self.alter, Alter::Rollback) {
            checkpoint.size.0 -= 1;
        } else {
            checkpoint.root[0] ^= 1;
        }
        let key = FileKey::from_pem_file(&keys_dir().join("log-ed25519.key")).unwrap();
        Ok(sign_checkpoint(&checkpoint, &checkpoint.origin.clone(), &key).unwrap())
    }
    async fn consistency(&self, first: u64, second: u64) -> Result<Vec<Hash>, FeedError> {
        self.inner.consistency(first, second).await
    }
    async fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, FeedError> {
        self.inner.inclusion(index, size).await
    }
    async fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, FeedError> {
        let mut entries = self.inner.entries(start, end).await?;
        if matches!(self.alter, Alter::Entry) {
            entries[0] = String::from_utf8(entries[0].clone())
                .unwrap()
                .replace("2026", "2025")
                .into_bytes();
        }
        Ok(entries)
    }
    async fn objects(&self, start: u64, end: u64) -> Result<Vec<SyncObject>, FeedError> {
        let mut objects = self.inner.objects(start, end).await?;
        for o in &mut objects {
            match (self.alter, &mut o.licence, &mut o.seal) {
                (Alter::Licence, Some(l), _) => *l = l.replacen("吉林示例科技有限公司", "吉林示例科技有限公吗", 1),
                (Alter::SealRecord, _, Some(seal)) => seal.record.name.push('章'),
                _ => {}
            }
        }
        Ok(objects)
    }
    async fn licence_type(&self, code: &TypeCode) -> Result<LicenceType, FeedError> {
        self.inner.licence_type(code).await
    }
}

fn feed_of(city: &Arc<Engine>) -> EngineFeed {
    EngineFeed { city: Arc::clone(city) }
}

fn altered(city: &Arc<Engine>, alter: Alter) -> AlteredFeed<Alter> {
    AlteredFeed {
        inner: feed_of(city),
        alter,
    }
}

fn source() -> SyncSource {
    source_named(&log_config().origin)
}

async fn city() -> (World, Arc<Engine>) {
    let w = world().await;
    // The engine moves into an Arc for the feed; the world keeps the store and clock alive.
    let World {
        engine,
        clock,
        store,
        _dir,
    } = w;
    let city = Arc::new(engine);
    (
        World {
            engine: engine_over(Arc::clone(&store), Arc::clone(&clock)).await,
            clock,
            store,
            _dir,
        },
        city,
    )
}

fn verdict(engine: &Engine, licence: &[u8], fresh: bool) -> zhengyin_model::VerificationReport {
    engine.verify_with(licence, &VerifyOptions { at: None, fresh })
}

/// Every licence this node holds, with its status: what "the same state" means.
fn state(store: &SledStore, ids: &[LicenceId]) -> Vec<(Vec<u8>, Vec<Status>)> {
    ids.iter()
        .map(|id| {
            let l = store.licence(id).unwrap().unwrap();
            (l.signed, l.status.changes.into_iter().map(|c| c.status).collect())
        })
        .collect()
}

#[tokio::test]
async fn a_province_replicates_issues_updates_suspensions_and_revocations() {
    let (_w, city) = city().await;
    let feed = feed_of(&city);
    let ed = uscc("11220000013544541J");
    let sm2 = uscc("12100000400010398P");
    let kept = city.issue(&ed, issue_request()).await.unwrap();
    let revoked = city.issue(&sm2, issue_request()).await.unwrap();
    let old = city.issue(&ed, issue_request()).await.unwrap();
    let new = city
        .update(
            &ed,
            &old.id,
            serde_json::from_value::<UpdateRequest>(json!({"reason": "变更住所", "number": "JL2026000009"})).unwrap(),
        )
        .await
        .unwrap();
    city.suspend(
        &ed,
        &kept.id,
        SuspendRequest {
            reason: "核查中".into(),
        },
    )
    .await
    .unwrap();
    city.reinstate(&ed, &kept.id).await.unwrap();
    city.revoke(
        &sm2,
        &revoked.id,
        RevokeRequest {
            reason: RevocationReason::Withdrawn,
            effective: None,
            note: "依法吊销".into(),
        },
    )
    .await
    .unwrap();

    let p = province().await;
    // Small pages: every page but the last is proven by a consistency proof of its own.
    let outcome = p.engine.sync_round(&source(), &feed, 3).await.unwrap();
    let size = city.latest_checkpoint().unwrap().unwrap().0 .0;
    assert_eq!((outcome.applied, outcome.size), (size, size));

    let r = verdict(&p.engine, &kept.bytes, true);
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
    assert_eq!(verdict(&p.engine, &new.bytes, true).verdict, Verdict::Valid);
    let report = verdict(&p.engine, &revoked.bytes, true);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(check(&report, "status").message.contains("依法吊销"), "{report:#?}");
    let report = verdict(&p.engine, &old.bytes, true);
    assert_eq!(check(&report, "status").message, format!("superseded by {}", new.id));
    assert!(report.status_source.unwrap().contains("as of its checkpoint"));
    assert_eq!(
        p.store.current_version(&old.id.lineage()).unwrap(),
        Some(new.id.clone())
    );
    // The licence type came from the city's catalogue with the first licence.
    assert!(p.engine.licence_type(new.id.type_code()).is_some());

    // Replicated licences change only at their source.
    let refused = p
        .engine
        .revoke(
            &ed,
            &kept.id,
            RevokeRequest {
                reason: RevocationReason::Cancelled,
                effective: None,
                note: String::new(),
            },
        )
        .await;
    assert!(matches!(refused, Err(EngineError::Replicated { .. })), "{refused:?}");
    // Objections go to the issuing authority, at the node it issues from.
    let objection: zhengyin_engine::FileObjection = serde_json::from_value(json!({
        "licence": kept.id.as_str(), "fields": [], "kind": "inaccurate", "statement": "住所有误"
    }))
    .unwrap();
    let refused = p
        .engine
        .file_objection(
            "department:示例审批系统",
            zhengyin_model::objection::Channel::Platform,
            objection,
        )
        .await;
    assert!(matches!(refused, Err(EngineError::Replicated { .. })), "{refused:?}");

    // Rounds with nothing new change nothing; the same page is never applied twice.
    let ids = [kept.id.clone(), revoked.id.clone(), old.id.clone(), new.id.clone()];
    let before = (state(&p.store, &ids), p.store.log_size().unwrap());
    for _ in 0..3 {
        assert_eq!(p.engine.sync_round(&source(), &feed, 3).await.unwrap().applied, 0);
    }
    assert_eq!((state(&p.store, &ids), p.store.log_size().unwrap()), before);

    // A second province syncing in one page reaches the same state.
    let q = province().await;
    q.engine.sync_round(&source(), &feed, 1000).await.unwrap();
    assert_eq!(state(&q.store, &ids), state(&p.store, &ids));

    // The province's own log records what it applied, so a node above it sees it too.
    let entries = p.engine.log_entries(0, 1000).unwrap();
    let applied: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_slice::<Value>(e).unwrap())
        .filter(|e| e["event"] == "sync.applied")
        .collect();
    assert!(applied.iter().any(|e| e["entry"]["event"] == "licence.revoked"));
    assert_eq!(applied[0]["origin"], log_config().origin.as_str());

    // New events at the city arrive in the next round.
    city.revoke(
        &ed,
        &new.id,
        RevokeRequest {
            reason: RevocationReason::Cancelled,
            effective: None,
            note: "申请注销".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(p.engine.sync_round(&source(), &feed, 3).await.unwrap().applied, 1);
    assert_eq!(verdict(&p.engine, &new.bytes, true).verdict, Verdict::Invalid);
}

#[tokio::test]
async fn status_older_than_the_maximum_staleness_is_indeterminate_when_fresh_status_is_required() {
    let (_w, city) = city().await;
    let feed = feed_of(&city);
    let licence = city.issue(&uscc("11220000013544541J"), issue_request()).await.unwrap();
    let p = province().await;
    p.engine.sync_round(&source(), &feed, 1000).await.unwrap();
    assert_eq!(verdict(&p.engine, &licence.bytes, true).verdict, Verdict::Valid);

    p.clock.advance(301);
    let report = verdict(&p.engine, &licence.bytes, true);
    assert_eq!(report.verdict, Verdict::Indeterminate);
    assert!(check(&report, "status_freshness").message.contains("301 s old"));
    let relaxed = verdict(&p.engine, &licence.bytes, false);
    assert_eq!(relaxed.verdict, Verdict::Valid, "without `fresh`, a warning only");
    assert_eq!(
        check(&relaxed, "status_freshness").outcome,
        zhengyin_model::Outcome::Warning
    );

    // A round confirms the copy current again, even with nothing new.
    p.engine.sync_round(&source(), &feed, 1000).await.unwrap();
    assert_eq!(verdict(&p.engine, &licence.bytes, true).verdict, Verdict::Valid);
    let view = &p.engine.sync_sources()[0];
    assert_eq!(
        (view.state, view.lag_entries, view.lag_seconds),
        ("syncing", 0, Some(0))
    );
}

#[tokio::test]
async fn an_open_incident_makes_its_sources_status_doubtful_at_once() {
    let (_w, city) = city().await;
    let licence = city.issue(&uscc("11220000013544541J"), issue_request()).await.unwrap();
    let p = province().await;
    p.engine.sync_round(&source(), &feed_of(&city), 1000).await.unwrap();
    assert_eq!(verdict(&p.engine, &licence.bytes, true).verdict, Verdict::Valid);

    // The city goes on; the province then meets a tampered answer and halts the city, well
    // within the staleness bound: what changed there since is not known here.
    city.issue(&uscc("11220000013544541J"), issue_request()).await.unwrap();
    let incident = expect_incident(&p, &altered(&city, Alter::Entry), IncidentKind::EntriesMismatch).await;
    let report = verdict(&p.engine, &licence.bytes, true);
    assert_eq!(report.verdict, Verdict::Indeterminate, "{report:#?}");
    assert!(
        check(&report, "status_freshness").message.contains(&incident.id),
        "{report:#?}"
    );
    let relaxed = verdict(&p.engine, &licence.bytes, false);
    assert_eq!(relaxed.verdict, Verdict::Valid, "without `fresh`, a warning only");
    let warning = check(&relaxed, "status_freshness");
    assert_eq!(warning.outcome, zhengyin_model::Outcome::Warning);
    assert!(warning.message.contains(&incident.id));

    p.engine
        .resolve_incident(&incident.id, "a faulty proxy, replaced", None)
        .await
        .unwrap();
    p.engine.sync_round(&source(), &feed_of(&city), 1000).await.unwrap();
    assert_eq!(verdict(&p.engine, &licence.bytes, true).verdict, Verdict::Valid);
}

async fn expect_incident<F: Feed>(p: &Province, feed: &F, kind: IncidentKind) -> zhengyin_model::SyncIncident {
    match p.engine.sync_round(&source(), feed, 1000).await {
        Err(SyncError::Incident(incident)) => {
            assert_eq!(incident.kind, kind, "{incident:?}");
            *incident
        }
        other => panic!("expected a {kind:?} incident, got {other:?}"),
    }
}

#[tokio::test]
async fn a_rewritten_entry_stops_the_source_until_an_operator_resolves_it() {
    let (_w, city) = city().await;
    city.issue(&uscc("11220000013544541J"), issue_request()).await.unwrap();
    let p = province().await;
    let honest = feed_of(&city);
    let tampered = altered(&city, Alter::Entry);
    let incident = expect_incident(&p, &tampered, IncidentKind::EntriesMismatch).await;
    // Before a first verified checkpoint, the evidence is the one received.
    assert_eq!(incident.evidence.len(), 1);
    assert!(incident.evidence[0].starts_with(&log_config().origin));
    assert!(p.store.sync_cursors().unwrap().is_empty(), "nothing applied");

    // Stopped: not even the honest source is read until the incident is resolved.
    assert!(matches!(
        p.engine.sync_round(&source(), &honest, 1000).await,
        Err(SyncError::Halted(id)) if id == incident.id
    ));
    assert_eq!(p.engine.sync_sources()[0].state, "halted");
    assert_eq!(
        p.engine.sync_incidents(false, None, 10).unwrap(),
        vec![incident.clone()]
    );
    assert_eq!(p.engine.sync_incidents(true, None, 10).unwrap(), vec![incident.clone()]);
    assert!(p
        .engine
        .sync_incidents(true, Some(&incident.id), 10)
        .unwrap()
        .is_empty());
    assert!(p.engine.resolve_incident(&incident.id, " ", None).await.is_err());
    p.engine
        .resolve_incident(&incident.id, "checked with the city's operators: a faulty proxy", None)
        .await
        .unwrap();
    // Resolved: listed still, but no longer among the open ones.
    assert!(p.engine.sync_incidents(true, None, 10).unwrap().is_empty());
    let listed = p.engine.sync_incidents(false, None, 10).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].resolved.is_some());
    assert!(p.engine.sync_round(&source(), &honest, 1000).await.unwrap().applied > 0);
}

#[tokio::test]
async fn a_fork_signed_with_the_real_key_is_caught_and_both_checkpoints_kept() {
    let (_w, city) = city().await;
    city.issue(&uscc("11220000013544541J"), issue_request()).await.unwrap();
    let p = province().await;
    let honest = feed_of(&city);
    p.engine.sync_round(&source(), &honest, 1000).await.unwrap();
    let forked = altered(&city, Alter::Fork);
    let incident = expect_incident(&p, &forked, IncidentKind::Fork).await;
    let verifier = source().verifier;
    let roots: Vec<Checkpoint> = incident
        .evidence
        .iter()
        .map(|note| zhengyin_tlog::open_checkpoint(note, &verifier).unwrap())
        .collect();
    assert_eq!(roots[0].size, roots[1].size);
    assert_ne!(roots[0].root, roots[1].root, "the evidence proves the fork to anyone");

    // A smaller signed checkpoint than one verified: the log was rolled back.
    let r = province().await;
    r.engine.sync_round(&source(), &honest, 1000).await.unwrap();
    let rolled_back = altered(&city, Alter::Rollback);
    expect_incident(&r, &rolled_back, IncidentKind::Rollback).await;

    // After more entries, a forked history fails the consistency proof instead.
    let q = province().await;
    q.engine.sync_round(&source(), &honest, 1000).await.unwrap();
    city.issue(&uscc("11220000013544541J"), issue_request()).await.unwrap();
    expect_incident(&q, &forked, IncidentKind::Inconsistent).await;
}

#[tokio::test]
async fn an_altered_licence_or_foreign_anchors_are_incidents_and_nothing_is_applied() {
    let (_w, city) = city().await;
    city.issue(&uscc("11220000013544541J"), issue_request()).await.unwrap();
    let p = province().await;
    let altered = altered(&city, Alter::Licence);
    let incident = expect_incident(&p, &altered, IncidentKind::ObjectInvalid).await;
    assert!(incident.detail.contains("hash"), "{}", incident.detail);
    assert!(p.store.sync_cursors().unwrap().is_empty());

    // Authorities whose certificates do not chain to the anchors configured for the source.
    let q = province().await;
    let mut foreign = source();
    foreign.anchors = TrustAnchors::default();
    let honest = feed_of(&city);
    match q.engine.sync_round(&foreign, &honest, 1000).await {
        Err(SyncError::Incident(i)) => assert_eq!(i.kind, IncidentKind::ObjectInvalid),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_log_key_or_origin_is_a_retryable_error_not_an_incident() {
    let (_w, city) = city().await;
    let p = province().await;
    let feed = feed_of(&city);
    let mut wrong = source();
    let other = FileKey::from_pem_file(&keys_dir().join("token-ed25519.key")).unwrap();
    wrong.verifier = NoteVerifier::new(&wrong.origin, zhengyin_crypto::Signer::public_key(&other).clone()).unwrap();
    assert!(matches!(
        p.engine.sync_round(&wrong, &feed, 10).await,
        Err(SyncError::Feed(_))
    ));
    let view = &p.engine.sync_sources()[0];
    assert_eq!((view.state, view.consecutive_errors), ("failing", 1));
    assert!(p.engine.sync_incidents(false, None, 10).unwrap().is_empty());
}

fn seal_request(holder_code: &str) -> zhengyin_engine::MakeSealRequest {
    use base64::Engine as _;
    zhengyin_engine::MakeSealRequest {
        name: "示例事业单位电子证照专用章".to_owned(),
        seal_type: 1,
        holder: serde_json::from_value(json!({"name": "示例事业单位", "code": holder_code, "code_type": "001"}))
            .unwrap(),
        valid_start: datetime!(2026-01-01 00:00 UTC),
        valid_end: datetime!(2030-01-01 00:00 UTC),
        signer_certificates: vec![chain_pem("sm2")],
        picture: zhengyin_engine::PictureRequest {
            kind: "PNG".to_owned(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nexample"),
            width: 40,
            height: 40,
        },
    }
}

#[tokio::test]
async fn seals_and_their_status_follow_the_licences_that_name_them() {
    let (_w, city) = city().await;
    let feed = feed_of(&city);
    let sm2 = "12100000400010398P";
    let seal = city.make_seal(seal_request(sm2)).await.unwrap();
    let es_id = seal.record.es_id.clone();
    let mut request = issue_request();
    request.seal = Some(es_id.clone());
    let licence = city.issue(&uscc(sm2), request).await.unwrap();

    // A record that says other than the signed seal is an incident.
    let renamed = altered(&city, Alter::SealRecord);
    let q = province().await;
    let incident = expect_incident(&q, &renamed, IncidentKind::ObjectInvalid).await;
    assert!(
        incident.detail.contains("differs from the signed seal"),
        "{}",
        incident.detail
    );

    let p = province().await;
    p.engine.sync_round(&source(), &feed, 2).await.unwrap();
    let report = verdict(&p.engine, &licence.bytes, true);
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");
    assert_eq!(check(&report, "seal").outcome, zhengyin_model::Outcome::Passed);
    let held = p.store.seal(&es_id).unwrap().unwrap();
    assert_eq!(held.der, seal.der, "the seal exactly as made");
    assert_eq!(held.record.origin.as_deref(), Some(log_config().origin.as_str()));
    assert_eq!(p.engine.verify_seal(&seal.der, None).verdict, Verdict::Valid);
    // Only its source changes or applies it.
    assert!(matches!(
        p.engine
            .change_seal_status(&es_id, SealState::Suspended { reason: "x".into() })
            .await,
        Err(EngineError::Replicated { .. })
    ));
    assert!(matches!(
        p.engine.apply_seal(&es_id, [0; 32], "x").await,
        Err(EngineError::Replicated { .. })
    ));

    // The seal is lost at the city: revoked there, the licence naming it fails at the province.
    city.change_seal_status(
        &es_id,
        SealState::Revoked {
            reason: "印章遗失".into(),
        },
    )
    .await
    .unwrap();
    p.engine.sync_round(&source(), &feed, 2).await.unwrap();
    let report = verdict(&p.engine, &licence.bytes, true);
    assert_eq!(report.verdict, Verdict::Invalid, "{report:#?}");
    assert!(check(&report, "seal").message.contains("revoked"), "{report:#?}");
}

#[tokio::test]
async fn a_chain_county_city_province_carries_licences_and_revocations_upwards() {
    // The "county" is the test world (its log origin is the test one); the city aggregates it
    // and is aggregated by the province.
    let (_w, county) = city().await;
    let licence = county
        .issue(&uscc("11220000013544541J"), issue_request())
        .await
        .unwrap();
    let city = Arc::new(node_named("zhengyin.example/city-chain").await);
    let province = node_named("zhengyin.example/province-chain").await;
    let city_source = source_named("zhengyin.example/city-chain");
    let county_feed = EngineFeed {
        city: Arc::clone(&county),
    };
    let city_feed = NodeFeed(Arc::clone(&city));

    city.engine.sync_round(&source(), &county_feed, 1000).await.unwrap();
    province
        .engine
        .sync_round(&city_source, &city_feed, 1000)
        .await
        .unwrap();
    assert_eq!(verdict(&province.engine, &licence.bytes, true).verdict, Verdict::Valid);
    // At the province the licence comes from the city, its immediate source.
    assert_eq!(
        province
            .engine
            .authority(&uscc("11220000013544541J"))
            .unwrap()
            .origin
            .as_deref(),
        Some("zhengyin.example/city-chain")
    );

    county
        .revoke(
            &uscc("11220000013544541J"),
            &licence.id,
            RevokeRequest {
                reason: RevocationReason::Rescinded,
                effective: None,
                note: "撤销".into(),
            },
        )
        .await
        .unwrap();
    city.engine.sync_round(&source(), &county_feed, 1000).await.unwrap();
    province
        .engine
        .sync_round(&city_source, &city_feed, 1000)
        .await
        .unwrap();
    let report = verdict(&province.engine, &licence.bytes, true);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(check(&report, "status").message.contains("撤销"), "{report:#?}");
}

const CITY_A: &str = "zhengyin.example/city-a";
const CITY_B: &str = "zhengyin.example/city-b";
const ED25519: &str = "11220000013544541J";
const SM2: &str = "12100000400010398P";

/// Cities A (ed25519) and B (sm2, and a claim on A's ed25519 authority) and a province that
/// followed A first; B has issued one licence of its own and one under the claimed authority.
async fn a_conflicting_claim() -> (
    Arc<Province>,
    Arc<Province>,
    Province,
    [zhengyin_engine::SignedLicence; 3],
) {
    let a = city_with(CITY_A, &["ed25519"]).await;
    let from_a = a.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();
    let province = node_named("zhengyin.example/province").await;
    province
        .engine
        .sync_round(&source_named(CITY_A), &NodeFeed(Arc::clone(&a)), 1000)
        .await
        .unwrap();
    let b = city_with(CITY_B, &["sm2", "ed25519"]).await;
    let own = b.engine.issue(&uscc(SM2), issue_request()).await.unwrap();
    let claimed = b.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();
    (a, b, province, [from_a, own, claimed])
}

fn incident_of(p: &Province, origin: &str) -> zhengyin_model::SyncIncident {
    let mut all = p.engine.sync_incidents(false, None, 100).unwrap();
    all.retain(|i| i.origin == origin);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

#[tokio::test]
async fn a_claim_on_another_citys_authority_skips_only_that_authority_until_an_operator_keeps_the_owner() {
    let (_a, b, province, [from_a, own, claimed]) = a_conflicting_claim().await;
    let feed_b = NodeFeed(Arc::clone(&b));
    // The round succeeds: B's own licence arrives, the claimed authority's entries are skipped.
    province
        .engine
        .sync_round(&source_named(CITY_B), &feed_b, 1000)
        .await
        .unwrap();
    assert_eq!(verdict(&province.engine, &own.bytes, true).verdict, Verdict::Valid);
    assert_eq!(verdict(&province.engine, &from_a.bytes, true).verdict, Verdict::Valid);
    assert!(province.store.licence(&claimed.id).unwrap().is_none());
    assert_eq!(
        province.engine.authority(&uscc(ED25519)).unwrap().origin.as_deref(),
        Some(CITY_A),
        "the owner keeps the authority"
    );
    let incident = incident_of(&province, CITY_B);
    assert_eq!(incident.kind, IncidentKind::Conflict);
    let conflict = incident.conflict.clone().unwrap();
    assert_eq!(
        (conflict.authority.as_str(), conflict.owner.as_deref()),
        (ED25519, Some(CITY_A))
    );
    assert_eq!(
        conflict.skipped.len(),
        2,
        "the registration and the licence: {conflict:?}"
    );
    assert_eq!(conflict.registration, Some(conflict.skipped[0]));
    let view = province
        .engine
        .sync_sources()
        .into_iter()
        .find(|s| s.origin == CITY_B)
        .unwrap();
    assert_eq!((view.state, view.open_incidents.len()), ("syncing", 0), "{view:?}");
    assert_eq!(view.conflicts, vec![incident.id.clone()]);

    // B goes on: its own licences replicate; its next claimed one joins the same incident, and
    // so does the status change of a skipped licence.
    let own_later = b.engine.issue(&uscc(SM2), issue_request()).await.unwrap();
    rescind(&b.engine, ED25519, &claimed.id).await;
    province
        .engine
        .sync_round(&source_named(CITY_B), &feed_b, 1000)
        .await
        .unwrap();
    assert_eq!(
        verdict(&province.engine, &own_later.bytes, true).verdict,
        Verdict::Valid
    );
    let incident = incident_of(&province, CITY_B);
    assert_eq!(incident.conflict.as_ref().unwrap().skipped.len(), 3);

    // The operator must decide; keeping the owner is logged and leaves the authority with A.
    let err = province
        .engine
        .resolve_incident(&incident.id, "checked", None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("keep_owner or accept_claimant"), "{err}");
    let log_size = province.engine.log_sizes().unwrap().0;
    let resolved = province
        .engine
        .resolve_incident(
            &incident.id,
            "B registered it by mistake",
            Some(zhengyin_model::Decision::KeepOwner),
        )
        .await
        .unwrap();
    assert_eq!(
        resolved.resolved.unwrap().decision,
        Some(zhengyin_model::Decision::KeepOwner)
    );
    let entries = province.engine.log_entries(log_size, log_size + 1).unwrap();
    let entry: Value = serde_json::from_slice(&entries[0]).unwrap();
    assert_eq!(
        (
            entry["event"].as_str(),
            entry["decision"].as_str(),
            entry["authority"].as_str()
        ),
        (Some("sync.incident.resolved"), Some("keep_owner"), Some(ED25519))
    );
    assert!(province.engine.sync_sources().iter().all(|s| s.conflicts.is_empty()));

    // A later claim opens a new conflict; without a registration there is nothing to accept.
    b.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();
    province
        .engine
        .sync_round(&source_named(CITY_B), &feed_b, 1000)
        .await
        .unwrap();
    let open = province.engine.sync_incidents(true, None, 10).unwrap();
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_ne!(open[0].id, incident.id);
    let err = province
        .engine
        .resolve_incident(&open[0].id, "moved", Some(zhengyin_model::Decision::AcceptClaimant))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("never registered"), "{err}");
}

#[tokio::test]
async fn accepting_the_claimant_applies_what_was_skipped_and_makes_the_former_owner_the_conflict() {
    let (a, b, province, [_, _, claimed]) = a_conflicting_claim().await;
    let (feed_a, feed_b) = (NodeFeed(Arc::clone(&a)), NodeFeed(Arc::clone(&b)));
    province
        .engine
        .sync_round(&source_named(CITY_B), &feed_b, 1)
        .await
        .unwrap();
    let incident = incident_of(&province, CITY_B);
    let halting = province
        .engine
        .resolve_incident(&incident.id, "moved", None)
        .await
        .unwrap_err();
    assert!(matches!(halting, EngineError::InvalidRequest(_)), "{halting}");
    province
        .engine
        .resolve_incident(
            &incident.id,
            "the authority moved to B",
            Some(zhengyin_model::Decision::AcceptClaimant),
        )
        .await
        .unwrap();
    // Pending until B's next round replays the skipped entries.
    assert_eq!(province.engine.sync_incidents(true, None, 10).unwrap().len(), 1);
    province
        .engine
        .sync_round(&source_named(CITY_B), &feed_b, 1000)
        .await
        .unwrap();
    assert_eq!(verdict(&province.engine, &claimed.bytes, true).verdict, Verdict::Valid);
    assert_eq!(
        province.engine.authority(&uscc(ED25519)).unwrap().origin.as_deref(),
        Some(CITY_B)
    );
    let replayed = incident_of(&province, CITY_B);
    assert!(replayed.conflict.unwrap().replayed);
    assert!(province.engine.sync_incidents(true, None, 10).unwrap().is_empty());

    // A's next licence under the authority is now the conflict; A's other work goes on.
    let later = a.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();
    province
        .engine
        .sync_round(&source_named(CITY_A), &feed_a, 1000)
        .await
        .unwrap();
    assert_ne!(verdict(&province.engine, &later.bytes, false).verdict, Verdict::Valid);
    let conflict = incident_of(&province, CITY_A).conflict.unwrap();
    assert_eq!((conflict.owner.as_deref(), conflict.registration), (Some(CITY_B), None));
}

#[tokio::test]
async fn a_city_holding_the_ownership_map_refuses_another_citys_authority() {
    let (a, b, province, _) = a_conflicting_claim().await;
    let map = province.engine.ownership_map().unwrap();
    let key = NoteVerifier::parse(&province.engine.log_verifier().unwrap()).unwrap();
    let view = b.engine.adopt_ownership_map(&map, &key).unwrap();
    assert_eq!(view.authorities, 1);
    // B may not register (or add certificates to, or issue for) A's authority any more.
    let refused = b.engine.issue(&uscc(ED25519), issue_request()).await.unwrap_err();
    assert!(
        matches!(&refused, EngineError::OwnedElsewhere { owner, .. } if owner == CITY_A),
        "{refused}"
    );
    b.engine.issue(&uscc(SM2), issue_request()).await.unwrap();
    // A, the owner, is not refused by the same map.
    a.engine.adopt_ownership_map(&map, &key).unwrap();
    a.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();

    // A map signed by another key, an older version or another publisher is refused.
    let other = NoteVerifier::new("zhengyin.example/province", other_note_key()).unwrap();
    assert!(matches!(
        b.engine.adopt_ownership_map(&map, &other),
        Err(zhengyin_engine::federation::MapError::Signature(_))
    ));
    b.engine.issue(&uscc(SM2), issue_request()).await.unwrap();
    province.engine.publish_checkpoint().await.unwrap();
    let newer = {
        province
            .engine
            .sync_round(&source_named(CITY_B), &NodeFeed(Arc::clone(&b)), 1000)
            .await
            .unwrap();
        province.engine.ownership_map().unwrap()
    };
    b.engine.adopt_ownership_map(&newer, &key).unwrap();
    let older = b.engine.adopt_ownership_map(&map, &key).unwrap_err();
    assert!(
        matches!(older, zhengyin_engine::federation::MapError::RolledBack { .. }),
        "{older}"
    );
    let renamed = NoteVerifier::new("zhengyin.example/elsewhere", key_of_log()).unwrap();
    let foreign = {
        let body = map.split("\n\n").next().unwrap().to_owned() + "\n";
        let signer = FileKey::from_pem_file(&keys_dir().join("log-ed25519.key")).unwrap();
        zhengyin_tlog::sign_note(&body, "zhengyin.example/elsewhere", &signer).unwrap()
    };
    assert!(matches!(
        b.engine.adopt_ownership_map(&foreign, &renamed),
        Err(zhengyin_engine::federation::MapError::Publisher(_))
    ));
}

fn key_of_log() -> zhengyin_crypto::PublicKey {
    zhengyin_crypto::Signer::public_key(&FileKey::from_pem_file(&keys_dir().join("log-ed25519.key")).unwrap()).clone()
}

/// An Ed25519 key other than the log's.
fn other_note_key() -> zhengyin_crypto::PublicKey {
    zhengyin_crypto::Signer::public_key(
        &FileKey::from_pem_file(&keys_dir().join("identity-platform-ed25519.key")).unwrap(),
    )
    .clone()
}
