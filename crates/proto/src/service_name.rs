//! SWP/1 service names: `name/major`, e.g. `echo/1`.
//!
//! The name is lowercase ASCII letters, digits, `-` and `_`; the major
//! version is decimal. The whole name is at most [`MAX_LEN`] bytes and never
//! contains `.`, `*`, `>` or whitespace, so it is one token in a bus subject
//! and fits in a signed node record as it is.

/// Longest service name (`name/major`), in bytes.
pub const MAX_LEN: usize = 64;

/// Whether `name` is a valid SWP/1 service name: `name/major` with a
/// lowercase ASCII name (letters, digits, `-`, `_`) and a decimal major
/// version, at most [`MAX_LEN`] bytes in all.
pub fn is_valid(name: &str) -> bool {
    let Some((base, major)) = name.split_once('/') else {
        return false;
    };
    name.len() <= MAX_LEN
        && !base.is_empty()
        && base
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !major.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        assert!(is_valid("echo/1"));
        assert!(is_valid("tx-relay_2/10"));
        for bad in [
            "echo", "echo/", "/1", "Echo/1", "a.b/1", "a*/1", "a>/1", "a b/1", "a/1x", "a/1/2",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
        assert!(!is_valid(&format!("{}/1", "a".repeat(64))));
    }
}
