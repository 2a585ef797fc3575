//! Rules for sign-in sessions: found by key until they end, replaced, ended, purged.

use time::macros::datetime;
use time::Duration;

use super::*;

pub(super) fn sessions(store: &dyn Store) -> Outcome {
    let now = datetime!(2026-12-05 12:00 UTC);
    let (a, b) = ([1u8; 32], [2u8; 32]);
    ok(
        store.put_session(&a, b"holder a", now + Duration::hours(1)),
        "put session",
    )?;
    ok(
        store.put_session(&b, b"staff b", now + Duration::minutes(1)),
        "put session",
    )?;
    let get = |key: &[u8; 32], at| ok(store.session(key, at), "read session");
    ensure(
        get(&a, now)?.as_deref() == Some(b"holder a"),
        "a session is found by its key",
    )?;
    ensure(get(&[3u8; 32], now)?.is_none(), "an unknown key finds nothing")?;
    ensure(
        get(&b, now + Duration::minutes(1))?.is_none(),
        "a session is not found once it has ended",
    )?;
    ok(
        store.put_session(&a, b"holder a, renewed", now + Duration::hours(2)),
        "replace session",
    )?;
    ensure(
        get(&a, now + Duration::minutes(90))?.as_deref() == Some(b"holder a, renewed"),
        "a session is replaced with its new end",
    )?;
    let purged = ok(store.purge_sessions(now + Duration::minutes(5)), "purge sessions")?;
    ensure(purged == 1, "a purge removes the ended sessions, and only them")?;
    ensure(get(&a, now)?.is_some(), "a purge keeps the sessions that go on")?;
    ok(store.delete_session(&a), "delete session")?;
    ok(store.delete_session(&a), "delete session twice")?;
    ensure(get(&a, now)?.is_none(), "a deleted session is gone")
}
