//! Where a queued write's outcome is handed back: one slot per write, filled once by
//! the batch leader, that a thread can block on ([`Pending::wait`]) or a task can
//! await ([`Pending`] is a future) without holding a thread while its batch runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
struct State<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

/// The slot a leader fills.
pub(in crate::directory) struct Reply<T> {
    state: Mutex<State<T>>,
    filled: Condvar,
}

impl<T> Reply<T> {
    /// An empty slot and the handle that waits for it.
    pub(in crate::directory) fn new() -> (Arc<Self>, Pending<T>) {
        let slot = Arc::new(Self {
            state: Mutex::new(State {
                value: None,
                waker: None,
            }),
            filled: Condvar::new(),
        });
        (slot.clone(), Pending(slot))
    }

    /// Hands `value` to whoever waits (a blocked thread or a task).
    pub(in crate::directory) fn fill(&self, value: T) {
        let waker = {
            let mut state = self.state.lock();
            state.value = Some(value);
            state.waker.take()
        };
        self.filled.notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A write's outcome, once its batch is on disk.
pub struct Pending<T>(Arc<Reply<T>>);

impl<T> Pending<T> {
    /// Blocks the thread until the outcome is there.
    pub(in crate::directory) fn wait(self) -> T {
        let mut state = self.0.state.lock();
        loop {
            if let Some(value) = state.value.take() {
                return value;
            }
            self.0.filled.wait(&mut state);
        }
    }
}

impl<T> Future for Pending<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.0.state.lock();
        match state.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                match &state.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => state.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_thread_gets_the_value_filled_from_another() {
        let (slot, pending) = Reply::new();
        let filler = std::thread::spawn(move || slot.fill(7));
        assert_eq!(pending.wait(), 7);
        filler.join().unwrap();
    }

    #[test]
    fn a_task_is_woken_once_the_value_is_filled() {
        let (slot, pending) = Reply::new();
        let filler = std::thread::spawn(move || slot.fill("done"));
        assert_eq!(futures_executor::block_on(pending), "done");
        filler.join().unwrap();
    }

    #[test]
    fn a_value_filled_before_anyone_waits_is_kept() {
        let (slot, pending) = Reply::new();
        slot.fill(1);
        assert_eq!(futures_executor::block_on(pending), 1);
    }
}
