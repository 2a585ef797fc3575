//! A pool of device sessions for one key, shared by the PKCS#11 and SDF signers.
//!
//! A device session runs one operation at a time, so concurrent signings need as many; the pool
//! opens them on demand up to its capacity and otherwise makes callers wait for one to come back.
//! Each session belongs to a generation of the device connection: when the device is started
//! afresh the generation moves on, sessions of older ones are dropped instead of reused, and the
//! count of open ones starts again.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

pub(crate) struct Pool<T> {
    state: Mutex<State<T>>,
    returned: Condvar,
    capacity: usize,
}

struct State<T> {
    generation: u64,
    idle: Vec<T>,
    open: usize,
}

impl<T> Pool<T> {
    /// An empty pool of at most one session per core.
    pub(crate) fn per_core(generation: u64) -> Self {
        Self {
            state: Mutex::new(State {
                generation,
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            capacity: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle session of `generation`, a new one from `open` if under capacity, or the next
    /// one returned.
    pub(crate) fn check_out<E>(&self, generation: u64, open: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let mut state = self.lock();
        if state.generation != generation {
            state.generation = generation;
            state.idle.clear();
            state.open = 0;
        }
        loop {
            if let Some(session) = state.idle.pop() {
                return Ok(session);
            }
            if state.open < self.capacity {
                state.open += 1;
                break;
            }
            state = self.returned.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        drop(state);
        let opened = open();
        if opened.is_err() {
            self.check_in(generation, None);
        }
        opened
    }

    /// Returns a session to the pool, or gives up its place (`None`, or a session of an older
    /// generation, which is dropped).
    pub(crate) fn check_in(&self, generation: u64, session: Option<T>) {
        let mut state = self.lock();
        if state.generation == generation {
            match session {
                Some(session) => state.idle.push(session),
                None => state.open = state.open.saturating_sub(1),
            }
        }
        drop(state);
        self.returned.notify_one();
    }

    /// Adds a session opened outside the pool (the first, opened to check the key at start-up).
    pub(crate) fn adopt(&self, generation: u64, session: T) {
        let mut state = self.lock();
        if state.generation == generation {
            state.open += 1;
            state.idle.push(session);
        }
    }

    /// Drops every idle session and forgets the open ones (the device is being started afresh).
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.idle.clear();
        state.open = 0;
        drop(state);
        self.returned.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_reused_and_older_generations_dropped() {
        let pool = Pool::per_core(0);
        let first: u32 = pool.check_out(0, || Ok::<_, ()>(1)).unwrap();
        pool.check_in(0, Some(first));
        assert_eq!(
            pool.check_out(0, || Ok::<_, ()>(2)),
            Ok(1),
            "the idle session is reused"
        );
        pool.check_in(0, Some(1));
        assert_eq!(
            pool.check_out(1, || Ok::<_, ()>(3)),
            Ok(3),
            "a new generation opens anew"
        );
        pool.check_in(0, Some(1)); // an old one coming back is dropped
        pool.check_in(1, Some(3));
        assert_eq!(pool.check_out(1, || Ok::<_, ()>(4)), Ok(3));
        // A failed opening gives its place back: all places can still be filled.
        assert_eq!(pool.check_out(1, || Err::<u32, _>("down")), Err("down"));
        for n in 0..pool.capacity - 1 {
            assert!(pool.check_out(1, || Ok::<_, ()>(10 + n as u32)).is_ok());
        }
    }
}
