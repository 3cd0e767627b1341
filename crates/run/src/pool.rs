//! Units of work handed out to worker threads in order.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Indices `0..len` handed out once each, in order, to whichever worker
/// asks next.
#[derive(Debug)]
pub struct WorkPool {
    next: AtomicUsize,
    len: usize,
}

impl WorkPool {
    pub fn new(len: usize) -> Self {
        WorkPool { next: AtomicUsize::new(0), len }
    }

    /// The next unit, or None when all have been handed out.
    pub fn take(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        (i < self.len).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_is_handed_out_once_across_threads() {
        let pool = WorkPool::new(1000);
        let taken = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    while let Some(i) = pool.take() {
                        taken.lock().unwrap().push(i);
                    }
                });
            }
        });
        let mut taken = taken.into_inner().unwrap();
        taken.sort();
        assert_eq!(taken, (0..1000).collect::<Vec<_>>());
        assert_eq!(pool.take(), None);
    }
}
