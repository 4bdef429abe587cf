//! The arguments a bench was given, shared by every bench binary.

/// The arguments, without the `--bench` that `cargo bench` adds.
pub fn args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect()
}
