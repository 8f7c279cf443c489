//! Transactions (Skycoin's `coin.Transaction`).
//!
//! A transaction spends unspent outputs (its inputs, each named by its uxid) and creates new
//! ones (its outputs). Its encoding:
//!
//! ```text
//! u32 length | u8 type | [32] inner hash |
//! u32 nSigs | nSigs × [65] sig | u32 nIn | nIn × [32] uxid |
//! u32 nOut | nOut × ([1] address version | [20] key | u64 coins | u64 hours)
//! ```
//!
//! so its size is `49 + 65·sigs + 32·inputs + 37·outputs` bytes.
//!
//! - Its id, [`Transaction::hash`], is the SHA-256 of the whole encoding, signatures included.
//! - [`Transaction::hash_inner`] covers only the inputs and outputs (each with its count);
//!   signature `i` signs `SHA256(inner_hash || inputs[i])` ([`Transaction::signing_hash`]).
//! - `length` is the size of the whole encoding and `type` must be 0; both, and the inner
//!   hash, are set by [`Transaction::update_header`].
//!
//! [`Transaction::verify`] checks the transaction on its own, as Skycoin's `Transaction.verify`;
//! [`Transaction::verify_input_signatures`] checks each signature against the output it
//! spends. Coins, hours and fees against the unspent set are checked elsewhere ([`crate::fee`]
//! and the chain).
//!
//! # Recovering each signature once
//!
//! Both checks need the key behind each signature, and recovering it is by far the most
//! expensive step (one secp256k1 recovery per input). A verifier that runs both, as a chain
//! does for every transaction of a block, recovers each signer once with
//! [`Transaction::recover_signer`] (pure, so the inputs of a block can be spread over
//! threads) and hands the results to the same checks in three parts:
//! [`Transaction::verify_structure`] (everything [`Transaction::verify`] checks before the
//! signatures), [`Transaction::verify_signers`] (its signature step) and
//! [`Transaction::verify_input_signers`] ([`Transaction::verify_input_signatures`]). The
//! errors, and the order they are found in, are those of [`Transaction::verify`] and
//! [`Transaction::verify_input_signatures`], which are built from these parts.

use std::collections::HashSet;

use skywire_identity::{Address, Keypair};

use crate::encoding::{Decode, DecodeError, Decoder, Encode, EncodeError, Encoder, MAX_LEN};
use crate::hash::{Hash, add_sha256, sha256};
use crate::sig::{Sig, SigError, check_address};
use crate::ux::{UxBody, UxOut};

/// One output of a transaction: coins and hours sent to an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Output {
    /// Who may spend it.
    pub address: Address,
    /// Coins, in droplets (10⁻⁶ coin).
    pub coins: u64,
    /// Coin hours.
    pub hours: u64,
}

impl Output {
    /// Length of the encoding: address (21), coins (8), hours (8).
    pub const ENCODED_LEN: usize = 37;

    /// The id (uxid) this output gets when created by the transaction with id `txid`
    /// (Skycoin's `TransactionOutput.UxID`).
    pub fn uxid(&self, txid: &Hash) -> Hash {
        UxBody {
            src_transaction: *txid,
            address: self.address,
            coins: self.coins,
            hours: self.hours,
        }
        .hash()
    }
}

impl Encode for Output {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        self.address.encode_to(enc)?;
        enc.u64(self.coins);
        enc.u64(self.hours);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN
    }
}

impl Decode for Output {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            address: Address::decode_from(dec)?,
            coins: dec.u64()?,
            hours: dec.u64()?,
        })
    }
}

/// A transaction, field for field as Skycoin encodes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transaction {
    /// Size of the whole encoding in bytes (0 in the genesis transaction).
    pub length: u32,
    /// Transaction type; must be 0.
    pub kind: u8,
    /// [`Transaction::hash_inner`] of the inputs and outputs (zero in the genesis transaction).
    pub inner_hash: Hash,
    /// One signature per input; [`Sig::NULL`] for an input not signed yet.
    pub sigs: Vec<Sig>,
    /// The uxids of the outputs spent.
    pub inputs: Vec<Hash>,
    /// The outputs created.
    pub outputs: Vec<Output>,
}

/// Why a transaction is invalid, in the order Skycoin checks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// It spends nothing ("No inputs").
    #[error("transaction has no inputs")]
    NoInputs,

    /// It creates nothing ("No outputs").
    #[error("transaction has no outputs")]
    NoOutputs,

    /// Not one signature per input ("Invalid number of signatures").
    #[error("{sigs} signatures for {inputs} inputs")]
    SignatureCount {
        /// Signatures present.
        sigs: usize,
        /// Inputs present.
        inputs: usize,
    },

    /// More than 65535 signatures and inputs ("Too many signatures and inputs").
    #[error("{count} inputs, at most {max} allowed")]
    TooManyInputs {
        /// Inputs present.
        count: usize,
        /// The limit, [`MAX_LEN`].
        max: usize,
    },

    /// More than 65535 outputs ("Too many ouptuts").
    #[error("{count} outputs, at most {max} allowed")]
    TooManyOutputs {
        /// Outputs present.
        count: usize,
        /// The limit, [`MAX_LEN`].
        max: usize,
    },

    /// The same output is spent twice ("Duplicate spend").
    #[error("output {uxid} is spent twice")]
    DuplicateSpend {
        /// The uxid listed twice.
        uxid: Hash,
    },

    /// The type is not 0 ("transaction type invalid").
    #[error("transaction type {kind}, must be 0")]
    InvalidType {
        /// The type found.
        kind: u8,
    },

    /// An output sends zero coins ("Zero coin output").
    #[error("output {index} sends zero coins")]
    ZeroCoinOutput {
        /// Index of the output.
        index: usize,
    },

    /// The outputs' coins add up past `u64::MAX` ("Output coins overflow").
    #[error("output coins overflow")]
    OutputCoinsOverflow,

    /// `length` is not the size of the encoding ("Incorrect transaction length").
    #[error("transaction length field is {length}, its size is {size}")]
    LengthMismatch {
        /// The `length` field.
        length: u32,
        /// The actual size of the encoding.
        size: usize,
    },

    /// Two outputs would get the same uxid ("Duplicate output in transaction").
    #[error("two outputs would have uxid {uxid}")]
    DuplicateOutput {
        /// The shared uxid.
        uxid: Hash,
    },

    /// The inner hash does not match the inputs and outputs ("InnerHash does not match
    /// computed hash").
    #[error("inner hash is {found}, computed {computed}")]
    InnerHashMismatch {
        /// The `inner_hash` field.
        found: Hash,
        /// [`Transaction::hash_inner`].
        computed: Hash,
    },

    /// An input's signature is null in a transaction that must be signed ("Unsigned input
    /// in transaction").
    #[error("input {index} is not signed")]
    UnsignedInput {
        /// Index of the input.
        index: usize,
    },

    /// An input's signature is invalid: refused, or no key can be recovered from it.
    #[error("input {index}: {source}")]
    InvalidSignature {
        /// Index of the input.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: SigError,
    },

    /// A transaction checked as unsigned has no null signature ("Unsigned transaction must
    /// contain a null signature").
    #[error("unsigned transaction has no null signature")]
    NoNullSignature,

    /// Not one spent output per input ("txn.In != uxIn").
    #[error("{spent} spent outputs given for {inputs} inputs")]
    SpentCount {
        /// Spent outputs given.
        spent: usize,
        /// Inputs present.
        inputs: usize,
    },

    /// A spent output given is not the one the input names ("Ux hash mismatch").
    #[error("input {index} spends {input}, but the output given is {uxid}")]
    SpentMismatch {
        /// Index of the input.
        index: usize,
        /// The input's uxid.
        input: Hash,
        /// The uxid of the output given.
        uxid: Hash,
    },

    /// An input's signature is not by the owner of the output it spends ("Signature not
    /// valid for output being spent").
    #[error("input {index}: signature not valid for the output spent: {source}")]
    SpendSignature {
        /// Index of the input.
        index: usize,
        /// Why; [`SigError::AddressMismatch`] when signed by another key.
        #[source]
        source: SigError,
    },

    /// The signers handed to [`Transaction::verify_signers`] or
    /// [`Transaction::verify_input_signers`] are not one per input: the caller's mistake,
    /// not the transaction's (Skycoin has no such check).
    #[error("{signers} recovered signers for {inputs} inputs")]
    SignerCount {
        /// Signers given.
        signers: usize,
        /// Inputs present.
        inputs: usize,
    },
}

/// Why a transaction could not be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// Not one key per input.
    #[error("{keys} keys for {inputs} inputs")]
    KeyCount {
        /// Keys given.
        keys: usize,
        /// Inputs present.
        inputs: usize,
    },
    /// No keys (and so no inputs).
    #[error("no keys to sign with")]
    NoKeys,
    /// More than 65535 inputs.
    #[error("{count} inputs, at most {max} allowed")]
    TooManyInputs {
        /// Inputs present.
        count: usize,
        /// The limit, [`MAX_LEN`].
        max: usize,
    },
    /// A signature is already present.
    #[error("transaction is already signed")]
    AlreadySigned,
}

impl Transaction {
    /// Size of a transaction with no signatures, inputs or outputs.
    pub const BASE_LEN: usize = 4 + 1 + 32 + 4 + 4 + 4;

    /// The size of the encoding: `49 + 65·sigs + 32·inputs + 37·outputs`.
    pub fn size(&self) -> usize {
        Self::BASE_LEN
            + Sig::LEN * self.sigs.len()
            + Hash::LEN * self.inputs.len()
            + Output::ENCODED_LEN * self.outputs.len()
    }

    /// The transaction id: SHA-256 of the whole encoding, signatures included.
    ///
    /// A transaction over the [`MAX_LEN`] limits has no valid encoding (Skycoin panics);
    /// this hashes the encoding it would have, with its true counts.
    pub fn hash(&self) -> Hash {
        let mut enc = Encoder::with_capacity(self.size());
        self.encode_unchecked(&mut enc);
        sha256(enc.as_bytes())
    }

    /// SHA-256 of the inputs and outputs, each list with its count: what the signatures
    /// commit to.
    pub fn hash_inner(&self) -> Hash {
        let mut enc = Encoder::with_capacity(
            8 + Hash::LEN * self.inputs.len() + Output::ENCODED_LEN * self.outputs.len(),
        );
        enc.u32(count(self.inputs.len()));
        self.inputs.iter().for_each(|input| enc.bytes(&input.0));
        enc.u32(count(self.outputs.len()));
        self.outputs
            .iter()
            .for_each(|output| output_unchecked(&mut enc, output));
        sha256(enc.as_bytes())
    }

    /// What the signature of input `index` signs: `SHA256(inner_hash || inputs[index])`,
    /// or `None` if there is no such input.
    pub fn signing_hash(&self, index: usize) -> Option<Hash> {
        self.inputs
            .get(index)
            .map(|input| add_sha256(&self.inner_hash, input))
    }

    /// Sets `length` to the size, `kind` to 0 and `inner_hash` to [`Transaction::hash_inner`]
    /// (Skycoin's `UpdateHeader`). Call it after the signatures are in place (or after
    /// [`Transaction::sign`]: signing changes no size when `sigs` already has one entry per
    /// input).
    ///
    /// # Errors
    ///
    /// [`EncodeError::MaxLenExceeded`] if a list is longer than [`MAX_LEN`].
    pub fn update_header(&mut self) -> Result<(), EncodeError> {
        for len in [self.sigs.len(), self.inputs.len(), self.outputs.len()] {
            if len > MAX_LEN {
                return Err(EncodeError::MaxLenExceeded { len, max: MAX_LEN });
            }
        }
        // At most 49 + 65535 · (65 + 32 + 37) bytes: fits a u32.
        self.length = u32::try_from(self.size()).unwrap_or(u32::MAX);
        self.kind = 0;
        self.inner_hash = self.hash_inner();
        Ok(())
    }

    /// Signs every input, input `i` with `keys[i]` (Skycoin's `SignInputs`): sets
    /// `inner_hash` to [`Transaction::hash_inner`] and `sigs[i]` to the signature over
    /// [`Transaction::signing_hash`]`(i)`. Does not touch `length`.
    ///
    /// # Errors
    ///
    /// [`SignError`] if the keys do not match the inputs one for one, or if a non-null
    /// signature is already present.
    pub fn sign(&mut self, keys: &[Keypair]) -> Result<(), SignError> {
        if keys.len() != self.inputs.len() {
            return Err(SignError::KeyCount {
                keys: keys.len(),
                inputs: self.inputs.len(),
            });
        }
        if keys.len() > MAX_LEN {
            return Err(SignError::TooManyInputs {
                count: keys.len(),
                max: MAX_LEN,
            });
        }
        if keys.is_empty() {
            return Err(SignError::NoKeys);
        }
        if self.sigs.iter().any(|sig| !sig.is_null()) {
            return Err(SignError::AlreadySigned);
        }
        self.inner_hash = self.hash_inner();
        self.sigs = keys
            .iter()
            .zip(&self.inputs)
            .map(|(key, input)| Sig::sign(key, &add_sha256(&self.inner_hash, input)))
            .collect();
        Ok(())
    }

    /// Checks the transaction on its own, in the order of Skycoin's `Transaction.verify`:
    /// inputs and outputs present, one signature per input, at most 65535 of each, no input
    /// spent twice, type 0, no zero-coin output, output coins without overflow, `length`
    /// equal to the size, no two outputs with one uxid, the inner hash, then the signatures.
    ///
    /// With `signed` (Skycoin's `Verify`), every signature must be present; without
    /// (`VerifyUnsigned`), null signatures are skipped but at least one must be null. A
    /// present signature must only be valid for *some* key (see [`Sig::recover`]): who
    /// signed is checked by [`Transaction::verify_input_signatures`].
    ///
    /// Like Skycoin, this does not check the size limit, droplet precision or fees (soft
    /// rules, [`crate::fee`]), nor anything about the outputs spent.
    ///
    /// [`Transaction::verify_structure`], then [`Transaction::verify_signers`] with every
    /// signer recovered: to also check the outputs spent, use those two and
    /// [`Transaction::verify_input_signers`] with the same signers (see the
    /// [module docs](self#recovering-each-signature-once)).
    ///
    /// # Errors
    ///
    /// The first [`TxError`] found.
    pub fn verify(&self, signed: bool) -> Result<(), TxError> {
        self.verify_structure()?;
        self.verify_signers(signed, &self.recover_signers())
    }

    /// The checks of [`Transaction::verify`] before the signatures, in its order: inputs and
    /// outputs present, one signature per input, at most 65535 of each, no input spent
    /// twice, type 0, no zero-coin output, output coins without overflow, `length` equal to
    /// the size, no two outputs with one uxid, the inner hash. No signature is recovered.
    ///
    /// # Errors
    ///
    /// The first [`TxError`] found.
    pub fn verify_structure(&self) -> Result<(), TxError> {
        if self.inputs.is_empty() {
            return Err(TxError::NoInputs);
        }
        if self.outputs.is_empty() {
            return Err(TxError::NoOutputs);
        }
        if self.sigs.len() != self.inputs.len() {
            return Err(TxError::SignatureCount {
                sigs: self.sigs.len(),
                inputs: self.inputs.len(),
            });
        }
        if self.sigs.len() > MAX_LEN {
            return Err(TxError::TooManyInputs {
                count: self.inputs.len(),
                max: MAX_LEN,
            });
        }
        if self.outputs.len() > MAX_LEN {
            return Err(TxError::TooManyOutputs {
                count: self.outputs.len(),
                max: MAX_LEN,
            });
        }
        let mut spent = HashSet::with_capacity(self.inputs.len());
        if let Some(uxid) = self.inputs.iter().find(|input| !spent.insert(**input)) {
            return Err(TxError::DuplicateSpend { uxid: *uxid });
        }
        if self.kind != 0 {
            return Err(TxError::InvalidType { kind: self.kind });
        }
        if let Some(index) = self.outputs.iter().position(|output| output.coins == 0) {
            return Err(TxError::ZeroCoinOutput { index });
        }
        self.output_coins()?;
        let size = self.size();
        if usize::try_from(self.length) != Ok(size) {
            return Err(TxError::LengthMismatch {
                length: self.length,
                size,
            });
        }
        let txid = self.hash();
        let mut created = HashSet::with_capacity(self.outputs.len());
        if let Some(uxid) = self
            .outputs
            .iter()
            .map(|output| output.uxid(&txid))
            .find(|uxid| !created.insert(*uxid))
        {
            return Err(TxError::DuplicateOutput { uxid });
        }
        self.check_inner_hash()
    }

    /// Who signed input `index`: the address of the key recovered from `sigs[index]` over
    /// [`Transaction::signing_hash`]`(index)` (with the `inner_hash` field as it stands), or
    /// why none can be recovered ([`Sig::recover`]; a null signature gives
    /// [`SigError::Malformed`] without any curve arithmetic). `None` if there is no
    /// signature or no input `index`.
    ///
    /// One secp256k1 recovery, the expensive part of checking a transaction, and pure: the
    /// inputs of many transactions may be recovered on several threads, then checked with
    /// [`Transaction::verify_signers`] and [`Transaction::verify_input_signers`].
    pub fn recover_signer(&self, index: usize) -> Option<Result<Address, SigError>> {
        let sig = self.sigs.get(index)?;
        let digest = self.signing_hash(index)?;
        Some(sig.recover(&digest).map(|key| key.address()))
    }

    /// [`Transaction::recover_signer`] of every input that has a signature, in order: one
    /// per input when there are as many signatures as inputs.
    pub fn recover_signers(&self) -> Vec<Result<Address, SigError>> {
        (0..self.sigs.len().min(self.inputs.len()))
            .filter_map(|index| self.recover_signer(index))
            .collect()
    }

    /// The signature step of [`Transaction::verify`], with each signature's recovery done
    /// beforehand: `signers[i]` must be [`Transaction::recover_signer`]`(i)`. Assumes
    /// [`Transaction::verify_structure`] passed.
    ///
    /// In input order: with `signed`, a null signature is [`TxError::UnsignedInput`];
    /// without, it is skipped. A signature no key can be recovered from is
    /// [`TxError::InvalidSignature`]. Without `signed`, at least one must be null.
    ///
    /// # Errors
    ///
    /// [`TxError::SignerCount`] unless there is one signer per input, then the first of
    /// the above.
    pub fn verify_signers(
        &self,
        signed: bool,
        signers: &[Result<Address, SigError>],
    ) -> Result<(), TxError> {
        self.check_signer_count(signers)?;
        for (index, (sig, signer)) in self.sigs.iter().zip(signers).enumerate() {
            if sig.is_null() {
                if signed {
                    return Err(TxError::UnsignedInput { index });
                }
                continue;
            }
            if let Err(source) = signer {
                return Err(TxError::InvalidSignature {
                    index,
                    source: source.clone(),
                });
            }
        }
        if !signed && !self.sigs.iter().any(Sig::is_null) {
            return Err(TxError::NoNullSignature);
        }
        Ok(())
    }

    /// Checks every input's signature against the output it spends: `spent[i]` must be the
    /// output `inputs[i]` names, and its address must have signed
    /// [`Transaction::signing_hash`]`(i)` (Skycoin's `VerifyInputSignatures`).
    ///
    /// Skycoin's preconditions (the counts, the inner hash, the uxids) panic there; here they
    /// are errors. [`Transaction::verify_input_signers`] with every signer recovered.
    ///
    /// # Errors
    ///
    /// [`TxError::SpentCount`], [`TxError::SignatureCount`], [`TxError::InnerHashMismatch`],
    /// [`TxError::SpentMismatch`], [`TxError::UnsignedInput`] or [`TxError::SpendSignature`].
    pub fn verify_input_signatures(&self, spent: &[UxOut]) -> Result<(), TxError> {
        self.verify_input_signers(spent, &self.recover_signers())
    }

    /// [`Transaction::verify_input_signatures`] with each signature's recovery done
    /// beforehand: `signers[i]` must be [`Transaction::recover_signer`]`(i)`.
    ///
    /// In order: one spent output per input, one signature per input, one signer per
    /// input, the inner hash, every spent output the one its input names, then input by
    /// input: the signature present and its signer the spent output's address.
    ///
    /// # Errors
    ///
    /// [`TxError::SpentCount`], [`TxError::SignatureCount`], [`TxError::SignerCount`],
    /// [`TxError::InnerHashMismatch`], [`TxError::SpentMismatch`],
    /// [`TxError::UnsignedInput`] or [`TxError::SpendSignature`].
    pub fn verify_input_signers(
        &self,
        spent: &[UxOut],
        signers: &[Result<Address, SigError>],
    ) -> Result<(), TxError> {
        if spent.len() != self.inputs.len() {
            return Err(TxError::SpentCount {
                spent: spent.len(),
                inputs: self.inputs.len(),
            });
        }
        if self.sigs.len() != self.inputs.len() {
            return Err(TxError::SignatureCount {
                sigs: self.sigs.len(),
                inputs: self.inputs.len(),
            });
        }
        self.check_signer_count(signers)?;
        self.check_inner_hash()?;
        for (index, (input, ux)) in self.inputs.iter().zip(spent).enumerate() {
            let uxid = ux.hash();
            if uxid != *input {
                return Err(TxError::SpentMismatch {
                    index,
                    input: *input,
                    uxid,
                });
            }
        }
        for (index, ((sig, signer), ux)) in self.sigs.iter().zip(signers).zip(spent).enumerate() {
            if sig.is_null() {
                return Err(TxError::UnsignedInput { index });
            }
            signer
                .clone()
                .and_then(|recovered| check_address(recovered, &ux.body.address))
                .map_err(|source| TxError::SpendSignature { index, source })?;
        }
        Ok(())
    }

    /// [`TxError::SignerCount`] unless `signers` has one entry per input.
    fn check_signer_count(&self, signers: &[Result<Address, SigError>]) -> Result<(), TxError> {
        if signers.len() == self.inputs.len() {
            Ok(())
        } else {
            Err(TxError::SignerCount {
                signers: signers.len(),
                inputs: self.inputs.len(),
            })
        }
    }

    /// [`TxError::InnerHashMismatch`] unless `inner_hash` is [`Transaction::hash_inner`].
    fn check_inner_hash(&self) -> Result<(), TxError> {
        let computed = self.hash_inner();
        if computed == self.inner_hash {
            Ok(())
        } else {
            Err(TxError::InnerHashMismatch {
                found: self.inner_hash,
                computed,
            })
        }
    }

    /// The outputs' coins added up.
    ///
    /// # Errors
    ///
    /// [`TxError::OutputCoinsOverflow`] past `u64::MAX`.
    pub fn output_coins(&self) -> Result<u64, TxError> {
        self.outputs
            .iter()
            .try_fold(0u64, |sum, output| sum.checked_add(output.coins))
            .ok_or(TxError::OutputCoinsOverflow)
    }

    /// The outputs' hours added up (Skycoin's `OutputHours`), or `None` past `u64::MAX`.
    pub fn output_hours(&self) -> Option<u64> {
        self.outputs
            .iter()
            .try_fold(0u64, |sum, output| sum.checked_add(output.hours))
    }

    /// The encoding, writing counts without the [`MAX_LEN`] check.
    fn encode_unchecked(&self, enc: &mut Encoder) {
        enc.u32(self.length);
        enc.u8(self.kind);
        enc.bytes(&self.inner_hash.0);
        enc.u32(count(self.sigs.len()));
        self.sigs.iter().for_each(|sig| enc.bytes(&sig.0));
        enc.u32(count(self.inputs.len()));
        self.inputs.iter().for_each(|input| enc.bytes(&input.0));
        enc.u32(count(self.outputs.len()));
        self.outputs
            .iter()
            .for_each(|output| output_unchecked(enc, output));
    }
}

/// A list length as the u32 written on the wire (lengths past `u32::MAX` cannot be held in
/// memory for these element sizes; saturate rather than panic).
fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn output_unchecked(enc: &mut Encoder, output: &Output) {
    enc.u8(output.address.version());
    enc.bytes(output.address.key());
    enc.u64(output.coins);
    enc.u64(output.hours);
}

impl Encode for Transaction {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        enc.u32(self.length);
        enc.u8(self.kind);
        self.inner_hash.encode_to(enc)?;
        enc.seq(&self.sigs)?;
        enc.seq(&self.inputs)?;
        enc.seq(&self.outputs)
    }

    fn encoded_len(&self) -> usize {
        self.size()
    }
}

impl Decode for Transaction {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            length: dec.u32()?,
            kind: dec.u8()?,
            inner_hash: Hash::decode_from(dec)?,
            sigs: dec.seq()?,
            inputs: dec.seq()?,
            outputs: dec.seq()?,
        })
    }
}
