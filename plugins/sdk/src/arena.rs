//! An allocator for plugins: hand out memory from a fixed arena and never
//! reuse it, because Wicket runs every review in a fresh instance and
//! throws its memory away afterwards.
//!
//! The default allocator (wasi-libc's dlmalloc) keeps free lists that no
//! review lives long enough to need; it was about 5% of the sidecar
//! injector's call. The arena sits in the module's zeroed data, inside the
//! memory the plugin starts with, so using it never grows the memory (a
//! memory that grew is reset with `mprotect` before the next instance).
//! Opt in with
//!
//! ```ignore
//! #[cfg(target_family = "wasm")]
//! #[global_allocator]
//! static ARENA: wicket_sdk::arena::Arena = wicket_sdk::arena::Arena::new();
//! ```
//!
//! A freed block is taken back only when it is the last one handed out (a
//! vector that grows at the end is extended in place). Once the arena is
//! used up, allocations go to the default allocator, so a review that
//! allocates more than [`ARENA_BYTES`] still works, as it would without
//! the arena.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, UnsafeCell};

/// The arena's size: what a review of a large pod allocates, with room to
/// spare, inside the 2 MiB a plugin starts with (`.cargo/config.toml`).
pub const ARENA_BYTES: usize = 768 << 10;

/// A bump allocator over `BYTES` bytes, falling back to the default
/// allocator when they run out.
#[repr(C, align(16))]
pub struct Arena<const BYTES: usize = ARENA_BYTES> {
    bytes: UnsafeCell<[u8; BYTES]>,
    /// Bytes handed out so far.
    used: Cell<usize>,
}

// SAFETY: a WebAssembly plugin without the `atomics` feature has one thread,
// so the arena is never used from two threads at once.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl<const BYTES: usize> Sync for Arena<BYTES> {}

impl<const BYTES: usize> Arena<BYTES> {
    /// An empty arena.
    pub const fn new() -> Self {
        Arena {
            bytes: UnsafeCell::new([0; BYTES]),
            used: Cell::new(0),
        }
    }

    fn start(&self) -> usize {
        self.bytes.get() as usize
    }

    /// Whether `ptr` was handed out by the arena (not by the fallback).
    fn holds(&self, ptr: *mut u8) -> bool {
        (self.start()..self.start() + BYTES).contains(&(ptr as usize))
    }

    /// Whether the block at `ptr` of `size` bytes is the last handed out.
    fn is_last(&self, ptr: *mut u8, size: usize) -> bool {
        ptr as usize + size == self.start() + self.used.get()
    }
}

impl<const BYTES: usize> Default for Arena<BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: blocks are aligned as asked and never overlap: `used` only grows
// past a block handed out, and only the last block's bytes are taken back.
// Blocks outside the arena come from and go back to `System`.
unsafe impl<const BYTES: usize> GlobalAlloc for Arena<BYTES> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let free = self.start() + self.used.get();
        let aligned = free.next_multiple_of(layout.align());
        match aligned.checked_add(layout.size()) {
            Some(end) if end <= self.start() + BYTES => {
                self.used.set(end - self.start());
                // The arena's own pointer, offset: keeps its provenance.
                self.bytes
                    .get()
                    .cast::<u8>()
                    .wrapping_add(aligned - self.start())
            }
            // SAFETY: the caller's layout, passed on.
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.holds(ptr) {
            // SAFETY: a block from `System`, with the layout it was asked with.
            return unsafe { System.dealloc(ptr, layout) };
        }
        if self.is_last(ptr, layout.size()) {
            self.used.set(ptr as usize - self.start());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let in_place = self.holds(ptr)
            && self.is_last(ptr, layout.size())
            && ptr as usize - self.start() + new_size <= BYTES;
        if in_place {
            self.used.set(ptr as usize - self.start() + new_size);
            return ptr;
        }
        // SAFETY: as `GlobalAlloc::realloc`'s contract: `new_size`, with the
        // old alignment, is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size, as `new_size` must be.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks hold at least the smaller size, and the
            // new one was just handed out, apart from the old.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_apart_and_the_last_is_taken_back() {
        let arena = Arena::<256>::new();
        unsafe {
            let a = arena.alloc(layout(3, 1));
            let b = arena.alloc(layout(8, 8));
            assert!(arena.holds(a) && arena.holds(b));
            assert_eq!(b as usize % 8, 0);
            assert!(b as usize >= a as usize + 3);
            let used = arena.used.get();
            arena.dealloc(a, layout(3, 1));
            assert_eq!(arena.used.get(), used, "only the last block is taken back");
            arena.dealloc(b, layout(8, 8));
            assert_eq!(b as usize, arena.start() + arena.used.get());
            assert_eq!(
                arena.alloc(layout(8, 8)),
                b,
                "its bytes are handed out again"
            );
        }
    }

    #[test]
    fn the_last_block_grows_in_place_and_others_move() {
        let arena = Arena::<256>::new();
        unsafe {
            let a = arena.alloc(layout(4, 1));
            a.copy_from_nonoverlapping(b"abcd".as_ptr(), 4);
            let grown = arena.realloc(a, layout(4, 1), 64);
            assert_eq!(grown, a);
            let b = arena.alloc(layout(4, 1));
            let moved = arena.realloc(grown, layout(64, 1), 100);
            assert_ne!(moved, grown);
            assert!(moved as usize > b as usize);
            assert_eq!(std::slice::from_raw_parts(moved, 4), b"abcd");
        }
    }

    #[test]
    fn a_full_arena_falls_back_to_the_default_allocator() {
        let arena = Arena::<64>::new();
        unsafe {
            let inside = arena.alloc(layout(48, 8));
            assert!(arena.holds(inside));
            let outside = arena.alloc(layout(32, 8));
            assert!(!outside.is_null() && !arena.holds(outside));
            outside.write_bytes(7, 32);
            let moved = arena.realloc(inside, layout(48, 8), 128);
            assert!(!arena.holds(moved), "too large for the arena: moved out");
            arena.dealloc(outside, layout(32, 8));
            arena.dealloc(moved, layout(128, 8));
        }
    }
}
