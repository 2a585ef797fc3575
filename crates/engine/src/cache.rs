//! The verification caches (ARCHITECTURE §9): verified signatures, and prepared licences.
//!
//! **Signatures.** The same signature over the same input with the same key is checked once.
//! The key is SHA-256 of (key id ‖ hashData ‖ signature), where the engine passes the signature
//! as its `proofValue` text (base58-btc is a bijection, and a hit then skips decoding it too):
//! everything the signature check depends on, so a hit can only repeat an earlier success. A
//! licence that differs in any byte of its content, proof configuration or signature has another
//! key and is checked afresh.
//!
//! **Prepared licences.** What a licence's bytes alone determine — the strict parse, the typed
//! body and proof, the canonical form's hashes — keyed by SHA-256 of the bytes as received, so a
//! licence presented again is neither parsed nor canonicalised again. The value is a pure
//! function of the key; nothing that can change (certificates, revocations, status, the clock)
//! is in it.
//!
//! Status, validity, certificates and the registry are never cached: they are checked on every
//! verification.
//!
//! Both are bounded and concurrent: 16 shards, each a map that is emptied when it reaches its
//! share of the capacity (cheap, and a miss only costs the work it would have saved).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use zhengyin_crypto::{hash, KeyId};

const SHARDS: usize = 16;

/// A bounded, sharded map from 32-byte digests, counting hits and misses.
#[derive(Debug)]
struct Bounded<V> {
    shards: Vec<Mutex<HashMap<[u8; 32], V>>>,
    per_shard: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<V: Clone> Bounded<V> {
    fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        self.per_shard > 0
    }

    fn shard(&self, key: &[u8; 32]) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], V>> {
        self.shards[usize::from(key[0]) % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The value under `key` (`None` also when off); counts a hit or a miss.
    fn get(&self, key: Option<&[u8; 32]>) -> Option<V> {
        let found = key.and_then(|key| self.shard(key).get(key).cloned());
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn insert(&self, key: Option<&[u8; 32]>, value: V) {
        let Some(key) = key else { return };
        let mut map = self.shard(key);
        if map.len() >= self.per_shard {
            map.clear();
        }
        map.insert(*key, value);
    }

    fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self
                .shards
                .iter()
                .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len() as u64)
                .sum(),
        }
    }
}

/// Verified (key, input, signature) triples.
#[derive(Debug)]
pub struct SignatureCache(Bounded<()>);

/// Cache counters, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to do the work.
    pub misses: u64,
    /// Entries held now.
    pub entries: u64,
}

impl SignatureCache {
    /// A cache of about `capacity` entries; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        Self(Bounded::new(capacity))
    }

    /// Checks a signature through the cache: `check` runs only on a miss, and only its
    /// successes are remembered.
    pub fn verify<E>(
        &self,
        key_id: &KeyId,
        hash_data: &[u8],
        signature: &[u8],
        check: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let key = self.key_of(key_id, hash_data, signature);
        if self.0.get(key.as_ref()).is_some() {
            return Ok(());
        }
        check()?;
        self.0.insert(key.as_ref(), ());
        Ok(())
    }

    /// Whether this signature is known good; counts a hit or a miss.
    pub fn contains(&self, key_id: &KeyId, hash_data: &[u8], signature: &[u8]) -> bool {
        self.0.get(self.key_of(key_id, hash_data, signature).as_ref()).is_some()
    }

    /// Runs `check` and remembers a success (for a caller that asked [`Self::contains`] already).
    pub fn check_and_remember<E>(
        &self,
        key_id: &KeyId,
        hash_data: &[u8],
        signature: &[u8],
        check: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        check()?;
        self.0.insert(self.key_of(key_id, hash_data, signature).as_ref(), ());
        Ok(())
    }

    /// The entry's key, or `None` when the cache is off (nothing to hash).
    fn key_of(&self, key_id: &KeyId, hash_data: &[u8], signature: &[u8]) -> Option<[u8; 32]> {
        self.0.enabled().then(|| {
            let mut buf = Vec::with_capacity(32 + hash_data.len() + signature.len());
            buf.extend_from_slice(&key_id.0);
            buf.extend_from_slice(hash_data);
            buf.extend_from_slice(signature);
            hash::sha256(&buf)
        })
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        self.0.stats()
    }
}

/// Values that are a pure function of the bytes they were made from, by SHA-256 of those bytes.
#[derive(Debug)]
pub struct PreparedCache<V>(Bounded<Arc<V>>);

impl<V> PreparedCache<V> {
    /// A cache of about `capacity` entries; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        Self(Bounded::new(capacity))
    }

    /// The value made from `bytes`: from the cache, or by `make` (whose successes are kept).
    pub fn get_or_make<E>(&self, bytes: &[u8], make: impl FnOnce(&[u8]) -> Result<V, E>) -> Result<Arc<V>, E> {
        let key = self.0.enabled().then(|| hash::sha256(bytes));
        if let Some(found) = self.0.get(key.as_ref()) {
            return Ok(found);
        }
        let made = Arc::new(make(bytes)?);
        self.0.insert(key.as_ref(), Arc::clone(&made));
        Ok(made)
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        self.0.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_successes_are_remembered_and_every_input_byte_counts() {
        let cache = SignatureCache::new(64);
        let id = KeyId([1; 32]);
        let fail = || Err::<(), ()>(());
        assert!(cache.verify(&id, b"data", b"sig", fail).is_err());
        assert!(
            cache.verify(&id, b"data", b"sig", fail).is_err(),
            "a failure is not cached"
        );
        assert!(cache.verify(&id, b"data", b"sig", || Ok::<(), ()>(())).is_ok());
        assert!(cache.verify(&id, b"data", b"sig", fail).is_ok(), "a success is");
        assert!(cache.verify(&id, b"datb", b"sig", fail).is_err(), "other input");
        assert!(cache.verify(&id, b"data", b"sih", fail).is_err(), "other signature");
        assert!(
            cache.verify(&KeyId([2; 32]), b"data", b"sig", fail).is_err(),
            "other key"
        );
        assert_eq!(cache.stats().hits, 1);
    }

    #[test]
    fn prepared_values_are_made_once_per_distinct_bytes_and_failures_are_not_kept() {
        let cache = PreparedCache::new(64);
        let made = std::cell::Cell::new(0);
        let make = |bytes: &[u8]| {
            made.set(made.get() + 1);
            if bytes.starts_with(b"bad") {
                Err("bad")
            } else {
                Ok(bytes.len())
            }
        };
        assert_eq!(*cache.get_or_make(b"abc", make).unwrap(), 3);
        assert_eq!(*cache.get_or_make(b"abc", make).unwrap(), 3);
        assert_eq!(made.get(), 1, "the second lookup is a hit");
        assert_eq!(
            *cache.get_or_make(b"abcd", make).unwrap(),
            4,
            "other bytes, made afresh"
        );
        assert!(cache.get_or_make(b"bad", make).is_err());
        assert!(cache.get_or_make(b"bad", make).is_err());
        assert_eq!(made.get(), 4, "a failure is made again every time");
        assert_eq!(cache.stats().hits, 1);
        let off = PreparedCache::new(0);
        off.get_or_make(b"abc", make).unwrap();
        off.get_or_make(b"abc", make).unwrap();
        assert_eq!(made.get(), 6, "off: nothing is kept");
        assert_eq!(off.stats().entries, 0);
    }

    #[test]
    fn the_cache_stays_bounded_and_can_be_disabled() {
        let cache = SignatureCache::new(32);
        for i in 0u32..1000 {
            cache
                .verify(&KeyId([0; 32]), &i.to_be_bytes(), b"s", || Ok::<(), ()>(()))
                .unwrap();
        }
        assert!(cache.stats().entries <= 32);
        let off = SignatureCache::new(0);
        off.verify(&KeyId([0; 32]), b"d", b"s", || Ok::<(), ()>(())).unwrap();
        assert!(off.verify(&KeyId([0; 32]), b"d", b"s", || Err::<(), ()>(())).is_err());
    }
}
