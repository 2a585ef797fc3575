//! Group commit: many writers, one flush.
//!
//! A writer applies its change to the backend (in memory, not yet durable), takes a [`Ticket`],
//! and waits for it. One flusher thread repeatedly takes the highest ticket handed out, flushes
//! the backend once, and releases every writer at or below that ticket. Under load one fsync
//! covers a whole batch of requests; a lone request waits for one flush, no timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::StoreError;

/// A write's place in the flush order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[must_use = "a write is not durable until its ticket is waited for"]
pub struct Ticket(pub(crate) u64);

#[derive(Default)]
struct State {
    issued: u64,
    flushed: u64,
    failed: Option<String>,
    shutdown: bool,
    wakers: Vec<(u64, Waker)>,
}

/// The shared state between writers and the flusher thread.
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl GroupCommit {
    /// Starts the flusher thread; `flush` makes every write applied so far durable.
    pub(crate) fn start(flush: impl Fn() -> Result<(), String> + Send + 'static) -> Arc<Self> {
        let gc = Arc::new(Self {
            state: Mutex::default(),
            work: Condvar::new(),
            done: Condvar::new(),
            flusher: Mutex::new(None),
        });
        let flusher = Arc::clone(&gc);
        match std::thread::Builder::new()
            .name("zhengyin-flush".to_owned())
            .spawn(move || flusher.run(flush))
        {
            Ok(handle) => *gc.flusher.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle),
            Err(_) => gc.lock().failed = Some("cannot start the flusher thread".to_owned()),
        }
        gc
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn run(&self, flush: impl Fn() -> Result<(), String>) {
        loop {
            let target = {
                let mut s = self.lock();
                while s.flushed == s.issued && !s.shutdown {
                    s = self.work.wait(s).unwrap_or_else(|p| p.into_inner());
                }
                if s.flushed == s.issued {
                    return;
                }
                s.issued
            };
            let result = flush();
            let wakers = {
                let mut s = self.lock();
                match result {
                    Ok(()) => s.flushed = target,
                    // A failed flush poisons the store: nothing later may be acknowledged.
                    Err(e) => s.failed = Some(e),
                }
                let failed = s.failed.is_some();
                let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut s.wakers)
                    .into_iter()
                    .partition(|(t, _)| failed || *t <= s.flushed);
                s.wakers = waiting;
                ready
            };
            self.done.notify_all();
            wakers.into_iter().for_each(|(_, w)| w.wake());
            if self.lock().failed.is_some() {
                return;
            }
        }
    }

    /// Hands out the ticket of a write that has just been applied.
    pub(crate) fn ticket(&self) -> Ticket {
        let mut s = self.lock();
        s.issued += 1;
        let t = Ticket(s.issued);
        drop(s);
        self.work.notify_one();
        t
    }

    fn check(&self, s: &State, t: Ticket) -> Option<Result<(), StoreError>> {
        if let Some(e) = &s.failed {
            return Some(Err(StoreError::Backend(format!("flush failed: {e}"))));
        }
        (s.flushed >= t.0).then_some(Ok(()))
    }

    /// Blocks until `t` is durable.
    pub(crate) fn wait_blocking(&self, t: Ticket) -> Result<(), StoreError> {
        let mut s = self.lock();
        loop {
            if let Some(r) = self.check(&s, t) {
                return r;
            }
            s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Stops the flusher once everything handed out is flushed, and waits for it.
    pub(crate) fn shutdown(&self) {
        self.lock().shutdown = true;
        self.work.notify_all();
        let handle = self.flusher.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            // The flusher only returns; a panic in it has already poisoned nothing we read.
            let _ = handle.join();
        }
    }
}

/// A future that resolves once a write is durable: after its group's flush, or at once for a
/// backend whose write returns only once committed (PostgreSQL).
pub struct Durable(Option<(Arc<GroupCommit>, Ticket)>);

impl Durable {
    pub(crate) fn new(gc: Arc<GroupCommit>, ticket: Ticket) -> Self {
        Self(Some((gc, ticket)))
    }

    /// A write already durable when the call that made it returned.
    pub(crate) fn committed() -> Self {
        Self(None)
    }

    /// Blocks the thread until durable (for synchronous callers such as tests and the CLI).
    pub fn wait(self) -> Result<(), StoreError> {
        match self.0 {
            Some((gc, ticket)) => gc.wait_blocking(ticket),
            None => Ok(()),
        }
    }
}

impl Future for Durable {
    type Output = Result<(), StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some((gc, ticket)) = &self.0 else {
            return Poll::Ready(Ok(()));
        };
        let mut s = gc.lock();
        if let Some(r) = gc.check(&s, *ticket) {
            return Poll::Ready(r);
        }
        s.wakers.push((ticket.0, cx.waker().clone()));
        Poll::Pending
    }
}
