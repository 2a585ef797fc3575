//! The verified-signature cache: the same signature over the same input with the same key is
//! checked once (ARCHITECTURE §9).
//!
//! The key is SHA-256 of (key id ‖ hashData ‖ signature), where the engine passes the signature
//! as its `proofValue` text (base58-btc is a bijection, and a hit then skips decoding it too):
//! everything the signature check depends on, so a hit can only repeat an earlier success. A licence that differs in any byte
//! of its content, proof configuration or signature has another key and is checked afresh.
//! Status, validity and the registry are never cached: they are checked on every verification.
//!
//! Bounded and concurrent: 16 shards, each a set that is emptied when it reaches its share of
//! the capacity (cheap, and a miss only costs one signature check).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use zhengyin_crypto::{hash, KeyId};

const SHARDS: usize = 16;

/// Verified (key, input, signature) triples.
#[derive(Debug)]
pub struct SignatureCache {
    shards: Vec<Mutex<HashSet<[u8; 32]>>>,
    per_shard: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Cache counters, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Verifications answered from the cache.
    pub hits: u64,
    /// Verifications that checked the signature.
    pub misses: u64,
    /// Entries held now.
    pub entries: u64,
}

impl SignatureCache {
    /// A cache of about `capacity` entries; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashSet::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn key(key_id: &KeyId, hash_data: &[u8], signature: &[u8]) -> [u8; 32] {
        let mut buf = Vec::with_capacity(32 + hash_data.len() + signature.len());
        buf.extend_from_slice(&key_id.0);
        buf.extend_from_slice(hash_data);
        buf.extend_from_slice(signature);
        hash::sha256(&buf)
    }

    fn shard(&self, key: &[u8; 32]) -> &Mutex<HashSet<[u8; 32]>> {
        &self.shards[usize::from(key[0]) % SHARDS]
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
        if self.lookup(key.as_ref()) {
            return Ok(());
        }
        check()?;
        self.remember(key.as_ref());
        Ok(())
    }

    /// Whether this signature is known good; counts a hit or a miss.
    pub fn contains(&self, key_id: &KeyId, hash_data: &[u8], signature: &[u8]) -> bool {
        self.lookup(self.key_of(key_id, hash_data, signature).as_ref())
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
        self.remember(self.key_of(key_id, hash_data, signature).as_ref());
        Ok(())
    }

    /// The entry's key, or `None` when the cache is off (nothing to hash).
    fn key_of(&self, key_id: &KeyId, hash_data: &[u8], signature: &[u8]) -> Option<[u8; 32]> {
        (self.per_shard > 0).then(|| Self::key(key_id, hash_data, signature))
    }

    fn lookup(&self, key: Option<&[u8; 32]>) -> bool {
        let hit = key.is_some_and(|key| self.shard(key).lock().unwrap_or_else(|p| p.into_inner()).contains(key));
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    fn remember(&self, key: Option<&[u8; 32]>) {
        let Some(key) = key else { return };
        let mut set = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= self.per_shard {
            set.clear();
        }
        set.insert(*key);
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        let entries = self
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len() as u64)
            .sum();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
        }
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
