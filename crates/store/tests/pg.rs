//! The PostgreSQL backend against a throwaway cluster: the contract suite and durability across
//! reopening (the same rules as sled), two stores racing on one database as two frontends would
//! (for the log and for leases),
//! and the databases a node must refuse at start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use zhengyin_store::pg::SCHEMA_VERSION;
use zhengyin_store::prelude::*;
use zhengyin_store::{contract, LeafIndex, PgStore, Store, StoreError, TreeSize};
use zhengyin_testdb::Cluster;

fn database() -> String {
    Cluster::shared().unwrap().database().unwrap()
}

#[test]
fn postgres_passes_the_contract() {
    let store = PgStore::open(&database()).unwrap();
    contract::run(&store).unwrap();
}

#[test]
fn postgres_keeps_what_it_acknowledged_across_reopening_and_concurrent_writers() {
    let url = database();
    let open = || PgStore::open(&url).map(|s| Arc::new(s) as Arc<dyn Store>);
    contract::run_durability(&open).unwrap();
}

/// Two frontends (two stores, two pools) appending at once: indices contiguous, every entry in
/// exactly once, and the tree the same as one built from the entries.
#[test]
fn two_frontends_racing_to_append_keep_one_contiguous_log() {
    let url = database();
    let frontends = [PgStore::open(&url).unwrap(), PgStore::open(&url).unwrap()];
    let indices: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..6)
            .map(|t| {
                let store = &frontends[t % 2];
                scope.spawn(move || {
                    (0..40)
                        .map(|i| {
                            let logged =
                                store.append_log(format!("frontend {} writer {t} entry {i}", t % 2).as_bytes());
                            let logged = logged.unwrap();
                            logged.durable.wait().unwrap();
                            logged.index.0
                        })
                        .collect()
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = indices.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..240).collect::<Vec<_>>(),
        "contiguous, each index handed out once"
    );
    let store = &frontends[1];
    assert_eq!(store.log_size().unwrap(), TreeSize(240));
    let entries = store.log_entries(LeafIndex(0), LeafIndex(240)).unwrap();
    let distinct: std::collections::BTreeSet<_> = entries.iter().collect();
    assert_eq!(distinct.len(), 240, "every entry exactly once");
    let mut tree = zhengyin_tlog::MemoryTree::default();
    for e in &entries {
        tree.push(zhengyin_tlog::leaf_hash(e));
    }
    assert_eq!(
        zhengyin_tlog::root(TreeSize(240), &zhengyin_store::LogReader(store)).unwrap(),
        zhengyin_tlog::root(TreeSize(240), &tree).unwrap()
    );
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            frontends[0].log_index_of(&zhengyin_tlog::leaf_hash(e)).unwrap(),
            Some(LeafIndex(i as u64))
        );
    }
}

/// Frontends racing for a free lease, round after round: exactly one holds it each round.
#[test]
fn frontends_racing_for_a_lease_give_it_to_exactly_one() {
    let url = database();
    let frontends = [PgStore::open(&url).unwrap(), PgStore::open(&url).unwrap()];
    let ttl = std::time::Duration::from_secs(60);
    for round in 0..20 {
        let name = format!("race {round}");
        let winners: usize = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..6)
                .map(|t| {
                    let (store, name) = (&frontends[t % 2], &name);
                    scope.spawn(move || store.take_lease(name, &format!("racer {t}"), ttl).unwrap())
                })
                .collect();
            racers.into_iter().map(|r| usize::from(r.join().unwrap())).sum()
        });
        assert_eq!(winners, 1, "round {round}: one holder");
    }
}

fn refused(url: &str) -> String {
    match PgStore::open(url) {
        Ok(_) => panic!("{url} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_schema_newer_than_this_build_is_refused_and_left_alone() {
    let cluster = Cluster::shared().unwrap();
    let url = database();
    let migrated = PgStore::migrate(&url).unwrap();
    assert_eq!((migrated.from, migrated.to), (0, SCHEMA_VERSION));
    let again = PgStore::migrate(&url).unwrap();
    assert_eq!(
        (again.from, again.to),
        (SCHEMA_VERSION, SCHEMA_VERSION),
        "nothing to do twice"
    );
    let name = url.rsplit('/').next().unwrap();
    let newer = SCHEMA_VERSION + 1;
    cluster
        .sql(
            name,
            &format!("INSERT INTO zhengyin_migrations (version, name) VALUES ({newer}, 'future')"),
        )
        .unwrap();
    let message = refused(&url);
    assert!(message.contains("newer than this build"), "{message}");
    assert!(matches!(PgStore::migrate(&url), Err(StoreError::Schema(_))));
    assert_eq!(
        cluster
            .sql(name, "SELECT MAX(version) FROM zhengyin_migrations")
            .unwrap(),
        newer.to_string(),
        "nothing written"
    );
}

#[test]
fn a_database_of_another_application_is_refused_and_left_alone() {
    let cluster = Cluster::shared().unwrap();
    let url = database();
    let name = url.rsplit('/').next().unwrap();
    cluster
        .sql(name, "CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        .unwrap();
    let message = refused(&url);
    assert!(
        message.contains("another application") && message.contains("invoices"),
        "{message}"
    );
    assert_eq!(
        cluster
            .sql(
                name,
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"
            )
            .unwrap(),
        "1",
        "nothing created"
    );
}

#[test]
fn unreachable_databases_and_unknown_users_are_refused_with_a_reason() {
    let cluster = Cluster::shared().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let message = refused(&format!("postgres://postgres@127.0.0.1:{free}/zhengyin"));
    assert!(message.contains("connection"), "{message}");
    let message = refused(&format!("postgres://nobody@127.0.0.1:{}/postgres", cluster.port()));
    assert!(message.contains("nobody"), "{message}");
    let message = refused(&format!(
        "postgres://postgres@127.0.0.1:{}/no_such_database",
        cluster.port()
    ));
    assert!(message.contains("no_such_database"), "{message}");
    let message = refused("mysql://localhost/zhengyin");
    assert!(message.contains("URL"), "{message}");
}

/// Writes that lose a compare-and-swap share transactions with writes that win (group commit):
/// each refused one is undone alone. 8 threads race 25 rounds to move one licence's status from
/// the history they read; per round exactly one wins, its entry is in the log, no loser's is.
#[test]
fn refused_writes_in_a_shared_transaction_are_undone_alone() {
    use zhengyin_model::licence::{Change, History};
    use zhengyin_model::{HolderCodeType, LicenceId, Status, TypeCode, Uscc, Version};
    let store = PgStore::open(&database()).unwrap();
    let id = LicenceId::new(
        TypeCode::parse("11100000000013338W032").unwrap(),
        Uscc::parse("11220000013544541J").unwrap(),
        "RACE1",
        Version::FIRST,
    )
    .unwrap();
    let at = |n: i64| time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000 + n);
    let mut history = History::default();
    history.push(Change {
        status: Status::Valid,
        effective: at(0),
        recorded: at(0),
    });
    let commit = zhengyin_store::LicenceCommit {
        id: id.clone(),
        signed: b"{}".to_vec(),
        document_sha256: [7; 32],
        status: history,
        holder: (HolderCodeType::Uscc, "91350100M000100Y43".to_owned()),
        number: "N-1".to_owned(),
        supersedes: None,
    };
    store
        .commit_licence(&commit, b"issued")
        .unwrap()
        .durable
        .wait()
        .unwrap();
    let before = store.log_size().unwrap().0;
    let mut wins = 0;
    for round in 0..25i64 {
        let read = store.licence_state(&id).unwrap().unwrap().status;
        let winners: Vec<u64> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..8)
                .map(|t| {
                    let (store, id, read) = (&store, &id, read.clone());
                    scope.spawn(move || {
                        let mut next = read.clone();
                        next.push(Change {
                            status: Status::Suspended {
                                reason: format!("racer {t}"),
                            },
                            effective: at(round + 1),
                            recorded: at(round + 1),
                        });
                        let entry = format!("round {round} racer {t}");
                        match store.update_status(id, &read, &next, entry.as_bytes()) {
                            Ok(logged) => {
                                logged.durable.wait().unwrap();
                                Some(logged.index.0)
                            }
                            Err(StoreError::Conflict) => None,
                            Err(e) => panic!("round {round}: {e}"),
                        }
                    })
                })
                .collect();
            racers.into_iter().filter_map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(winners.len(), 1, "round {round}: one winner, not {winners:?}");
        wins += 1;
    }
    let size = store.log_size().unwrap().0;
    assert_eq!(size, before + wins, "one entry per winner, none for a refused write");
    let entries = store.log_entries(LeafIndex(before), LeafIndex(size)).unwrap();
    let rounds: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(e).split(" racer").next().unwrap().to_owned())
        .collect();
    assert_eq!(rounds, (0..25).map(|r| format!("round {r}")).collect::<Vec<_>>());
    assert_eq!(store.licence_state(&id).unwrap().unwrap().status.changes.len(), 26);
}

/// A database written before licence-type versions, licence numbers and objection and incident listings
/// existed (schema 2) is upgraded in place (the contract's `earlier_data_indexed`).
#[test]
fn an_upgrade_keeps_the_types_as_version_one_and_reserves_the_numbers_already_issued() {
    let cluster = Cluster::shared().unwrap();
    let url = database();
    let name = url.rsplit('/').next().unwrap();
    assert_eq!(PgStore::migrate_to(&url, 2).unwrap().to, 2);
    let data = contract::EarlierData::sample().unwrap();
    let mut sql = format!(
        "INSERT INTO licence_types (code, record) VALUES ('{}', convert_to('{}', 'UTF8'));",
        data.type_code, data.type_record
    );
    for (licence, number) in &data.licences {
        sql.push_str(&format!(
            "INSERT INTO licences (id, holder, signed, document_sha256, status) VALUES \
             ('{licence}', 'h', convert_to('{}', 'UTF8'), '\\x00', NULL);",
            contract::EarlierData::signed(number)
        ));
    }
    for o in &data.objections {
        let record = serde_json::to_string(o).unwrap().replace('\'', "''");
        sql.push_str(&format!(
            "INSERT INTO objections (id, licence, record) VALUES ('{}', '{}', convert_to('{record}', 'UTF8'));",
            o.id, o.licence
        ));
    }
    for i in &data.incidents {
        let record = serde_json::to_string(i).unwrap().replace('\'', "''");
        sql.push_str(&format!(
            "INSERT INTO sync_incidents (id, record) VALUES ('{}', convert_to('{record}', 'UTF8'));",
            i.id
        ));
    }
    cluster.sql(name, &sql).unwrap();
    let store = PgStore::open(&url).unwrap(); // migrates
    contract::earlier_data_indexed(&store, &data).unwrap();
}
