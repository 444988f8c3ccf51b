//! The audit chain: each event's hash covers the previous event's hash and the event's own
//! canonical content, so that an edited, inserted or deleted event breaks the chain.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The hash the first event chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who caused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    Token,
    Device,
    Job,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Token => "token",
            ActorKind::Device => "device",
            ActorKind::Job => "job",
            ActorKind::System => "system",
        }
    }
}

/// One audit event's content, everything the hash covers except the previous hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditContent {
    pub seq: i64,
    pub id: String,
    pub at_ms: i64,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub agency: Option<String>,
    /// What changed: a JSON document, kept as the exact text that was stored.
    pub changes: String,
    pub request_id: Option<String>,
    pub source_addr: Option<String>,
}

impl AuditContent {
    /// Canonical bytes: JSON with fields in declaration order and no whitespace.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("audit content serializes")
    }

    /// The chained hash of this event after `prev_hash`.
    pub fn chain_hash(&self, prev_hash: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(self.canonical());
        hex::encode(hasher.finalize())
    }
}

/// A stored event: its content and the two hashes.
#[derive(Debug, Clone)]
pub struct ChainedEvent {
    pub content: AuditContent,
    pub prev_hash: String,
    pub hash: String,
}

/// Where the chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub id: String,
    pub reason: String,
}

/// Walks events in `seq` order. `expected_prev` is the hash the first given event must chain to
/// and `expected_seq` its sequence number; returns the state to continue with on the next batch.
pub fn verify_batch(
    events: &[ChainedEvent],
    expected_prev: &mut String,
    expected_seq: &mut i64,
) -> Result<(), ChainBreak> {
    for event in events {
        let brk = |reason: String| ChainBreak { seq: event.content.seq, id: event.content.id.clone(), reason };
        if event.content.seq != *expected_seq {
            return Err(ChainBreak {
                seq: *expected_seq,
                id: event.content.id.clone(),
                reason: format!("event {} is missing (next found is {})", expected_seq, event.content.seq),
            });
        }
        if event.prev_hash != *expected_prev {
            return Err(brk("its previous-hash does not match the event before it".into()));
        }
        if event.content.chain_hash(&event.prev_hash) != event.hash {
            return Err(brk("its content does not match its hash (edited)".into()));
        }
        expected_prev.clone_from(&event.hash);
        *expected_seq += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<ChainedEvent> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let content = AuditContent {
                    seq,
                    id: format!("e{seq}"),
                    at_ms: 1_700_000_000_000 + seq,
                    actor_kind: "system".into(),
                    actor_id: None,
                    actor_label: "test".into(),
                    action: "agency.create".into(),
                    object_type: "agency".into(),
                    object_id: "DOH".into(),
                    agency: Some("DOH".into()),
                    changes: "{}".into(),
                    request_id: None,
                    source_addr: None,
                };
                let hash = content.chain_hash(&prev);
                let event = ChainedEvent { content, prev_hash: prev.clone(), hash: hash.clone() };
                prev = hash;
                event
            })
            .collect()
    }

    fn verify(events: &[ChainedEvent]) -> Result<(), ChainBreak> {
        verify_batch(events, &mut GENESIS.to_string(), &mut 1)
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(()));
    }

    #[test]
    fn an_edit_is_named() {
        let mut events = chain(5);
        events[2].content.actor_label = "someone else".into();
        assert_eq!(verify(&events).unwrap_err().seq, 3);
    }

    #[test]
    fn a_deletion_is_named() {
        let mut events = chain(5);
        events.remove(1);
        let brk = verify(&events).unwrap_err();
        assert_eq!(brk.seq, 2);
        assert!(brk.reason.contains("missing"));
    }
}
