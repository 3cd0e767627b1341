//! The allocator of pairguard's binaries and benchmarks: mimalloc, told to
//! keep the pages it frees.
//!
//! The CPU encoder allocates a fresh buffer of up to tens of megabytes for
//! nearly every operation, and an attack's backward pass frees a whole
//! forward pass of activations. glibc maps each large buffer anew, so its
//! pages fault in again every time (the encoder ran at 12.2 images/s with
//! glibc, 15.7 with mimalloc). mimalloc keeps freed pages for a while, but
//! by default returns them to the OS after a second unused, which an attack
//! step (seconds long) outlives: ViT-B/32 forward + backward at batch 16 took
//! 3.5-4.6 s with the default and 2.4-2.9 s with purging off, the forward
//! pass alone 1.1-1.5 s and 0.9-1.2 s (alternating runs, 2-core Zen 4).
//! The cost is that the process keeps its peak memory until it exits.
//!
//! Only binaries and benchmarks link it; no library may set the global
//! allocator. [`Counting`] is for tests that bound allocations.

mod counting;

pub use counting::Counting;
pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` of mimalloc.h, which libmimalloc-sys does not name;
/// checked against the option after it, which it does.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const _: () = assert!(libmimalloc_sys::mi_option_use_numa_nodes == PURGE_DELAY + 1);

/// Never return freed pages to the OS. Call first thing in `main`.
#[allow(unsafe_code)]
pub fn keep_freed_pages() {
    // SAFETY: mi_option_set stores one integer in mimalloc's option table
    // (an atomic store); it takes no pointers and has no preconditions.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

/// The purge delay in effect, in milliseconds (-1: never).
#[allow(unsafe_code)]
pub fn purge_delay() -> std::ffi::c_long {
    // SAFETY: mi_option_get reads one integer from the option table.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_is_mimallocs_purge_delay() {
        // mimalloc 3's default purge delay is 1000 ms; no option next to it has that default.
        assert_eq!(super::purge_delay(), 1000);
        super::keep_freed_pages();
        assert_eq!(super::purge_delay(), -1);
    }
}
