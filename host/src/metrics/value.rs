//! Counts as metric values.

/// A count as a gauge's value.
pub(super) fn saturating_i64(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
