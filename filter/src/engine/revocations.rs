//! The revocation set, in shared data so that a token revoked by one worker (a local forfeit)
//! or learnt from the sidecar's sync is refused by every worker at once. Keys are
//! `lw.rev.<token id hex>`; shared data cannot delete, so an entry is never removed (a revoked
//! token stays revoked).

use super::host::Host;

fn key(token_hex: &str) -> String {
    format!("lw.rev.{token_hex}")
}

/// Whether the token is revoked.
pub fn is_revoked(host: &dyn Host, token_hex: &str) -> bool {
    !host.shared_get(&key(token_hex)).bytes.is_empty()
}

/// Revokes a token (idempotent). Returns false if the host refused the write.
pub fn revoke(host: &dyn Host, token_hex: &str) -> bool {
    // No CAS: every writer writes the same value, and creating a key ignores CAS anyway.
    host.shared_set(&key(token_hex), b"1", None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::host::memory::MemoryHost;

    #[test]
    fn a_revoked_token_stays_revoked_and_others_are_untouched() {
        let h = MemoryHost::at(0);
        assert!(!is_revoked(&h, "aa"));
        assert!(revoke(&h, "aa"));
        assert!(revoke(&h, "aa"));
        assert!(is_revoked(&h, "aa"));
        assert!(!is_revoked(&h, "bb"));
    }
}
