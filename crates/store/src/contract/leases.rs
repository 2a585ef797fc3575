//! Rules for leases: one holder at a time, until released or expired.

use std::time::Duration;

use super::*;

pub(super) fn leases(store: &dyn Store) -> Outcome {
    const LONG: Duration = Duration::from_secs(60);
    let take = |holder: &str, ttl| ok(store.take_lease("seed", holder, ttl), "take lease");
    ensure(take("a", LONG)?, "a free lease is taken")?;
    ensure(!take("b", LONG)?, "a held lease is refused to another holder")?;
    ensure(take("a", LONG)?, "the holder renews its lease")?;
    ensure(
        ok(store.take_lease("other", "b", LONG), "take lease")?,
        "leases of different names are apart",
    )?;
    ok(store.release_lease("seed", "b"), "release lease")?;
    ensure(!take("b", LONG)?, "another holder cannot release a lease")?;
    ok(store.release_lease("seed", "a"), "release lease")?;
    ensure(take("b", LONG)?, "a released lease is free")?;
    ensure(take("b", Duration::from_millis(50))?, "the holder shortens its lease")?;
    std::thread::sleep(Duration::from_millis(150));
    ensure(take("a", LONG)?, "an expired lease is free")?;
    ok(store.release_lease("seed", "a"), "release lease")?;
    ok(store.release_lease("other", "b"), "release lease")
}
