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

/// Runs `work` on every index `0..len` with up to `workers` threads, each
/// taking the next index when it is free. A worker stops when `work`
/// returns `Ok(false)` (a limit its siblings share is spent: the rest waits
/// for another run) or an error; the first error is returned once every
/// worker has stopped.
pub fn run_workers<E: Send>(len: usize, workers: usize, work: impl Fn(usize) -> Result<bool, E> + Sync) -> Result<(), E> {
    let pool = WorkPool::new(len);
    let first_error: std::sync::Mutex<Option<E>> = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers.min(len).max(1) {
            scope.spawn(|| {
                while let Some(i) = pool.take() {
                    match work(i) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
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

    #[test]
    fn workers_stop_at_a_spent_limit_or_the_first_error() {
        let done = std::sync::atomic::AtomicUsize::new(0);
        run_workers::<()>(100, 3, |_| Ok(done.fetch_add(1, Ordering::SeqCst) < 9)).unwrap();
        // 9 calls see true; then each of the 3 workers stops at its first false.
        assert_eq!(done.load(Ordering::SeqCst), 12);
        let e = run_workers(100, 2, |i| if i == 7 { Err(i) } else { Ok(true) }).unwrap_err();
        assert_eq!(e, 7);
        assert_eq!(run_workers::<()>(0, 4, |_| Ok(true)), Ok(()));
    }
}
