//! What defines a chain: its publisher's key and its genesis block, signed.
//!
//! Every node of a chain holds the same [`ChainSpec`] (from its configuration, as Skycoin
//! hard-codes its genesis): the publisher's public key, which signs every block, and the
//! genesis block's address, coins, time and signature. A node applies the genesis block
//! from its spec at start, so a follower never needs a peer for block 0, and a peer
//! serving another genesis is serving another chain. [`ChainSpec::create`] makes a new
//! chain (what `skywire chain new` runs).

use skywire_coin::{Block, Sig, SigError, SignedBlock};
use skywire_identity::{Address, Keypair, PublicKey};

use crate::verify::ChainParams;

/// A chain: its publisher and its signed genesis block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSpec {
    /// The key that signs every block.
    pub publisher: PublicKey,
    /// The address that receives every coin in the genesis block.
    pub genesis_address: Address,
    /// How many droplets the genesis block creates.
    pub genesis_coins: u64,
    /// The genesis block's time (seconds since the Unix epoch).
    pub genesis_time: u64,
    /// The publisher's signature over the genesis block's hash.
    pub genesis_sig: Sig,
}

impl ChainSpec {
    /// A new chain published by `publisher`, whose genesis block gives `coins` droplets to
    /// `address` at `time`.
    pub fn create(publisher: &Keypair, address: Address, coins: u64, time: u64) -> Self {
        let signed = Block::genesis(address, coins, time).sign_block(publisher);
        Self {
            publisher: publisher.public_key(),
            genesis_address: address,
            genesis_coins: coins,
            genesis_time: time,
            genesis_sig: signed.sig,
        }
    }

    /// The chain's rules (the defaults of [`ChainParams::new`]).
    pub fn params(&self) -> ChainParams {
        ChainParams::new(self.publisher)
    }

    /// The genesis block, unsigned.
    pub fn genesis_block(&self) -> Block {
        Block::genesis(self.genesis_address, self.genesis_coins, self.genesis_time)
    }

    /// The signed genesis block.
    pub fn genesis(&self) -> SignedBlock {
        SignedBlock {
            block: self.genesis_block(),
            sig: self.genesis_sig,
        }
    }

    /// Checks that the publisher signed the genesis block: a spec that fails this
    /// describes no chain.
    ///
    /// # Errors
    ///
    /// The [`SigError`] found.
    pub fn verify(&self) -> Result<(), SigError> {
        self.genesis().verify_signature(&self.publisher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_spec_verifies_and_a_changed_one_does_not() {
        let publisher = Keypair::generate();
        let owner = Keypair::generate().address();
        let spec = ChainSpec::create(&publisher, owner, 100_000_000_000_000, 1_700_000_000);
        spec.verify().expect("signed by its publisher");
        assert_eq!(spec.genesis().block.header.bk_seq, 0);

        let other_time = ChainSpec {
            genesis_time: spec.genesis_time + 1,
            ..spec
        };
        assert!(other_time.verify().is_err());
        let other_publisher = ChainSpec {
            publisher: Keypair::generate().public_key(),
            ..spec
        };
        assert!(other_publisher.verify().is_err());
    }
}
