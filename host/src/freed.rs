//! Giving freed memory back to the system after work that allocates much
//! and keeps little: a compilation, reading a folder of objects, building
//! an index over them.
//!
//! glibc keeps freed memory in per-thread arenas for reuse, and such work is
//! spread over the thread doing it and its helpers: 200 compilations left a
//! process at 1 GiB that needed 180 MiB, and reading 10,000 Ingresses (12 MB
//! of JSON, parsed whole) left 460 MiB where 30 MiB was held. (The image's
//! static build uses musl, whose allocator returns freed pages itself.)

/// Returns the memory freed so far to the system.
pub fn return_to_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases free memory; it takes the
    // allocator's own locks and touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
