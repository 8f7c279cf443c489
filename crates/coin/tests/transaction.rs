//! Transaction checks: each of Skycoin's rules broken once gives its own error, a properly
//! signed transaction passes, and signatures are accepted exactly when Skycoin accepts them
//! (including high-`s` signatures whose top bit is clear).

use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use skywire_coin::{
    Hash, Output, Sig, SigError, SignError, Transaction, TxError, UxBody, UxHead, UxOut,
    add_sha256, sha256,
};
use skywire_identity::{Address, Keypair, PublicKey, Signature};

/// `n`, the order of secp256k1, and `n / 2` rounded down.
const ORDER: [u8; 32] = secp256k1::constants::CURVE_ORDER;
const HALF_ORDER: &str = "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0";

/// An unspent output of 10 coins owned by `owner`.
fn owned_by(owner: &Keypair, seed: u8) -> UxOut {
    UxOut {
        head: UxHead {
            time: 1000,
            bk_seq: 5,
        },
        body: UxBody {
            src_transaction: sha256(&[seed]),
            address: owner.address(),
            coins: 10_000_000,
            hours: 100,
        },
    }
}

fn pay(to: Address, coins: u64, hours: u64) -> Output {
    Output {
        address: to,
        coins,
        hours,
    }
}

/// A transaction spending two outputs, signed by their owners, header up to date.
fn signed_tx() -> (Transaction, Vec<UxOut>, Vec<Keypair>) {
    let keys = vec![Keypair::generate(), Keypair::generate()];
    let spent = vec![owned_by(&keys[0], 1), owned_by(&keys[1], 2)];
    let recipient = Keypair::generate().address();
    let mut tx = Transaction {
        inputs: spent.iter().map(UxOut::hash).collect(),
        outputs: vec![
            pay(recipient, 15_000_000, 50),
            pay(keys[0].address(), 5_000_000, 10),
        ],
        ..Transaction::default()
    };
    tx.sign(&keys).expect("signs");
    tx.update_header().expect("within limits");
    (tx, spent, keys)
}

/// Re-seals `tx` after a change: header, then fresh signatures.
fn reseal(tx: &mut Transaction, keys: &[Keypair]) {
    tx.sigs.clear();
    tx.sign(keys).expect("signs");
    tx.update_header().expect("within limits");
}

#[test]
fn a_properly_signed_transaction_passes() {
    let (tx, spent, keys) = signed_tx();
    assert_eq!(tx.verify(true), Ok(()));
    assert_eq!(tx.verify_input_signatures(&spent), Ok(()));
    assert_eq!(tx.length as usize, tx.size());
    assert_eq!(tx.inner_hash, tx.hash_inner());
    for (i, sig) in tx.sigs.iter().enumerate() {
        let digest = add_sha256(&tx.inner_hash, &tx.inputs[i]);
        assert_eq!(tx.signing_hash(i), Some(digest));
        assert_eq!(sig.recover(&digest), Ok(keys[i].public_key()));
    }
    assert_eq!(tx.signing_hash(2), None);
}

#[test]
fn no_inputs_no_outputs_signature_count() {
    let (tx, _, _) = signed_tx();
    let mut bad = tx.clone();
    bad.inputs.clear();
    assert_eq!(bad.verify(true), Err(TxError::NoInputs));
    let mut bad = tx.clone();
    bad.outputs.clear();
    assert_eq!(bad.verify(true), Err(TxError::NoOutputs));
    let mut bad = tx.clone();
    bad.sigs.pop();
    assert_eq!(
        bad.verify(true),
        Err(TxError::SignatureCount { sigs: 1, inputs: 2 })
    );
}

#[test]
fn too_many_inputs_or_outputs() {
    let (tx, _, _) = signed_tx();
    let mut bad = tx.clone();
    bad.inputs = (0..65536u32).map(|i| sha256(&i.to_le_bytes())).collect();
    bad.sigs = vec![Sig::NULL; 65536];
    assert_eq!(
        bad.verify(true),
        Err(TxError::TooManyInputs {
            count: 65536,
            max: 65535
        })
    );
    let mut bad = tx.clone();
    bad.outputs = vec![tx.outputs[0]; 65536];
    assert_eq!(
        bad.verify(true),
        Err(TxError::TooManyOutputs {
            count: 65536,
            max: 65535
        })
    );
}

#[test]
fn duplicate_spend() {
    let (mut tx, spent, keys) = signed_tx();
    tx.inputs[1] = spent[0].hash();
    reseal(&mut tx, &keys);
    assert_eq!(
        tx.verify(true),
        Err(TxError::DuplicateSpend {
            uxid: spent[0].hash()
        })
    );
}

#[test]
fn type_must_be_zero() {
    let (mut tx, _, _) = signed_tx();
    tx.kind = 1;
    assert_eq!(tx.verify(true), Err(TxError::InvalidType { kind: 1 }));
}

#[test]
fn zero_coin_output() {
    let (mut tx, _, keys) = signed_tx();
    tx.outputs[1].coins = 0;
    reseal(&mut tx, &keys);
    assert_eq!(tx.verify(true), Err(TxError::ZeroCoinOutput { index: 1 }));
}

#[test]
fn output_coins_overflow() {
    let (mut tx, _, keys) = signed_tx();
    tx.outputs[0].coins = u64::MAX;
    reseal(&mut tx, &keys);
    assert_eq!(tx.verify(true), Err(TxError::OutputCoinsOverflow));
    // Output hours are not checked here.
    let (mut tx, _, keys) = signed_tx();
    tx.outputs[0].hours = u64::MAX;
    reseal(&mut tx, &keys);
    assert_eq!(tx.verify(true), Ok(()));
}

#[test]
fn wrong_length() {
    let (mut tx, _, _) = signed_tx();
    let size = tx.size();
    tx.length += 1;
    assert_eq!(
        tx.verify(true),
        Err(TxError::LengthMismatch {
            length: u32::try_from(size + 1).expect("small"),
            size
        })
    );
}

#[test]
fn duplicate_output() {
    let (mut tx, _, keys) = signed_tx();
    tx.outputs[1] = tx.outputs[0];
    reseal(&mut tx, &keys);
    assert_eq!(
        tx.verify(true),
        Err(TxError::DuplicateOutput {
            uxid: tx.outputs[0].uxid(&tx.hash())
        })
    );
}

#[test]
fn wrong_inner_hash() {
    let (mut tx, spent, _) = signed_tx();
    let computed = tx.inner_hash;
    tx.inner_hash = sha256(b"something else");
    assert_eq!(
        tx.verify(true),
        Err(TxError::InnerHashMismatch {
            found: tx.inner_hash,
            computed
        })
    );
    assert_eq!(
        tx.verify_input_signatures(&spent),
        Err(TxError::InnerHashMismatch {
            found: tx.inner_hash,
            computed
        })
    );
}

#[test]
fn unsigned_input() {
    let (mut tx, spent, _) = signed_tx();
    tx.sigs[1] = Sig::NULL;
    assert_eq!(tx.verify(true), Err(TxError::UnsignedInput { index: 1 }));
    assert_eq!(
        tx.verify_input_signatures(&spent),
        Err(TxError::UnsignedInput { index: 1 })
    );
    // Checked as unsigned, a null signature is allowed, and required.
    assert_eq!(tx.verify(false), Ok(()));
    let (tx, _, _) = signed_tx();
    assert_eq!(tx.verify(false), Err(TxError::NoNullSignature));
}

#[test]
fn bad_signature() {
    let (tx, _, _) = signed_tx();
    let mut bad = tx.clone();
    bad.sigs[0].0[64] = 4;
    assert_eq!(
        bad.verify(true),
        Err(TxError::InvalidSignature {
            index: 0,
            source: SigError::InvalidRecoveryId { got: 4 }
        })
    );
    let mut bad = tx.clone();
    bad.sigs[1].0[32] |= 0x80;
    assert_eq!(
        bad.verify(true),
        Err(TxError::InvalidSignature {
            index: 1,
            source: SigError::HighBitS
        })
    );
    let mut bad = tx.clone();
    bad.sigs[0].0[..32].copy_from_slice(&ORDER);
    assert_eq!(
        bad.verify(true),
        Err(TxError::InvalidSignature {
            index: 0,
            source: SigError::Malformed
        })
    );
}

#[test]
fn wrong_signer_for_the_spent_output() {
    let (tx, spent, keys) = signed_tx();
    // Input 1's output now belongs to someone else: the signature by keys[1] no longer
    // spends it (and the uxid changes with the owner, so the input names the new output).
    let thief = Keypair::generate();
    let mut stolen = spent.clone();
    stolen[1].body.address = thief.address();
    let mut tx2 = tx.clone();
    tx2.inputs[1] = stolen[1].hash();
    reseal(&mut tx2, &keys);
    assert_eq!(tx2.verify(true), Ok(()), "some key signed: verify passes");
    assert_eq!(
        tx2.verify_input_signatures(&stolen),
        Err(TxError::SpendSignature {
            index: 1,
            source: SigError::AddressMismatch {
                expected: thief.address(),
                recovered: keys[1].address()
            }
        })
    );

    // Signatures swapped between inputs: each was made by the other input's owner.
    let mut swapped = tx.clone();
    swapped.sigs.swap(0, 1);
    assert!(matches!(
        swapped.verify_input_signatures(&spent),
        Err(TxError::SpendSignature {
            index: 0,
            source: SigError::AddressMismatch { .. }
        })
    ));
}

#[test]
fn spent_outputs_must_match_the_inputs() {
    let (tx, spent, _) = signed_tx();
    assert_eq!(
        tx.verify_input_signatures(&spent[..1]),
        Err(TxError::SpentCount {
            spent: 1,
            inputs: 2
        })
    );
    let reversed: Vec<UxOut> = spent.iter().rev().copied().collect();
    assert_eq!(
        tx.verify_input_signatures(&reversed),
        Err(TxError::SpentMismatch {
            index: 0,
            input: spent[0].hash(),
            uxid: spent[1].hash()
        })
    );
}

#[test]
fn checks_with_signers_recovered_once_match_the_all_in_one_checks() {
    let (tx, spent, keys) = signed_tx();
    let signers = tx.recover_signers();
    let expected: Vec<Result<Address, SigError>> = keys.iter().map(|k| Ok(k.address())).collect();
    assert_eq!(signers, expected);
    assert_eq!(tx.recover_signer(1), Some(Ok(keys[1].address())));
    assert_eq!(tx.recover_signer(2), None);
    assert_eq!(tx.verify_structure(), Ok(()));
    assert_eq!(tx.verify_signers(true, &signers), Ok(()));
    assert_eq!(tx.verify_input_signers(&spent, &signers), Ok(()));

    // Each broken signature gives the same error both ways.
    let mut broken = Vec::new();
    for (index, edit) in [(1, 64), (0, 32), (1, 0)] {
        let mut bad = tx.clone();
        match edit {
            64 => bad.sigs[index].0[64] = 4,
            32 => bad.sigs[index].0[32] |= 0x80,
            _ => bad.sigs[index] = Sig::NULL,
        }
        broken.push(bad);
    }
    let mut swapped = tx.clone();
    swapped.sigs.swap(0, 1);
    broken.push(swapped);
    for bad in &broken {
        let signers = bad.recover_signers();
        assert_eq!(bad.verify_structure(), Ok(()));
        for signed in [true, false] {
            assert_eq!(bad.verify_signers(signed, &signers), bad.verify(signed));
        }
        assert_eq!(
            bad.verify_input_signers(&spent, &signers),
            bad.verify_input_signatures(&spent)
        );
        assert!(bad.verify_input_signatures(&spent).is_err());
    }

    // The signers must be one per input.
    assert_eq!(
        tx.verify_signers(true, &signers[..1]),
        Err(TxError::SignerCount {
            signers: 1,
            inputs: 2
        })
    );
    assert_eq!(
        tx.verify_input_signers(&spent, &[]),
        Err(TxError::SignerCount {
            signers: 0,
            inputs: 2
        })
    );
    // Signers in the wrong order are the wrong signers.
    let reversed: Vec<_> = signers.iter().rev().cloned().collect();
    assert_eq!(
        tx.verify_input_signers(&spent, &reversed),
        Err(TxError::SpendSignature {
            index: 0,
            source: SigError::AddressMismatch {
                expected: keys[0].address(),
                recovered: keys[1].address()
            }
        })
    );
}

#[test]
fn signing_errors() {
    let (tx, _, keys) = signed_tx();
    let mut again = tx.clone();
    assert_eq!(again.sign(&keys), Err(SignError::AlreadySigned));
    assert_eq!(
        again.sign(&keys[..1]),
        Err(SignError::KeyCount { keys: 1, inputs: 2 })
    );
    assert_eq!(Transaction::default().sign(&[]), Err(SignError::NoKeys));
    // Signing sets the inner hash.
    let mut fresh = Transaction {
        inputs: tx.inputs.clone(),
        outputs: tx.outputs.clone(),
        ..Transaction::default()
    };
    fresh.sign(&keys).expect("signs");
    assert_eq!(fresh.inner_hash, tx.inner_hash);
}

// --- High `s` -------------------------------------------------------------------------

/// `n - s`, big-endian.
fn negate(s: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut diff = i16::from(ORDER[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(diff < 0);
        if diff < 0 {
            diff += 256;
        }
        out[i] = u8::try_from(diff).expect("byte");
    }
    out
}

fn half_order_plus_one() -> [u8; 32] {
    let mut s: [u8; 32] = hex::decode(HALF_ORDER)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    s[31] += 1;
    s
}

/// The key libsecp256k1 recovers from `sig` as it stands (no normalization: recovery does
/// not apply the low-`s` rule), an independent check on [`Sig::recover`].
fn recover_raw(sig: &Sig, digest: &Hash) -> PublicKey {
    let recid = RecoveryId::try_from(i32::from(sig.0[64])).expect("recid");
    let raw = RecoverableSignature::from_compact(&sig.0[..64], recid).expect("parses");
    let key = raw
        .recover_ecdsa(secp256k1::Message::from_digest(digest.0))
        .expect("recovers");
    PublicKey::from_bytes(&key.serialize()).expect("valid key")
}

/// A signature over `digest` with the `r` and recovery id of a real one and
/// `s = n/2 + 1`: high, but with the top bit clear. Recovers to some key nobody chose.
fn high_s_sig(digest: &Hash) -> Sig {
    let mut sig = Sig::sign(&Keypair::generate(), digest);
    sig.0[32..64].copy_from_slice(&half_order_plus_one());
    sig
}

#[test]
fn negating_s_of_a_real_signature_sets_the_top_bit_which_skycoin_refuses() {
    // A real signature has s <= n/2; n - s is then above 2^255 unless s falls in a window
    // of about 2^127 values just below n/2, so the negated twin has its top bit set and
    // Skycoin refuses it (its malleability check).
    let keypair = Keypair::generate();
    let digest = sha256(b"spend");
    let sig = Sig::sign(&keypair, &digest);
    let mut twin = sig;
    twin.0[32..64].copy_from_slice(&negate(&sig.0[32..64]));
    twin.0[64] ^= 1;
    assert_ne!(twin.0[32] & 0x80, 0);
    assert_eq!(twin.recover(&digest), Err(SigError::HighBitS));
    // libsecp256k1 alone would recover the same key from it.
    assert_eq!(recover_raw(&twin, &digest), keypair.public_key());
}

#[test]
fn high_s_with_top_bit_clear_is_accepted_like_skycoin() {
    let digest = sha256(b"spend");
    let sig = high_s_sig(&digest);
    assert_eq!(sig.0[32] & 0x80, 0, "top bit clear");
    // skywire-identity refuses it: it is not in low-s form.
    assert_eq!(
        Signature::from_bytes(&sig.0),
        Err(skywire_identity::Error::HighS)
    );
    // Skycoin accepts it, and so do we: the same key as libsecp256k1 recovers directly.
    let signer = recover_raw(&sig, &digest);
    assert_eq!(sig.recover(&digest), Ok(signer));
    assert_eq!(sig.verify_public_key(&signer, &digest), Ok(()));
    assert_eq!(sig.verify_address(&signer.address(), &digest), Ok(()));
    // The normalized form is low-s with the other recovery id parity.
    let normalized = sig.normalize().expect("accepted");
    let bytes = normalized.to_bytes();
    assert_eq!(bytes[..32], sig.0[..32]);
    assert_eq!(bytes[32..64], negate(&sig.0[32..64]));
    assert_eq!(bytes[64], sig.0[64] ^ 1);
    assert_eq!(normalized.recover(&digest.0), Ok(signer));
    // Without the parity flip it would be some other key.
    let mut unflipped = bytes;
    unflipped[64] ^= 1;
    let unflipped = Signature::from_bytes(&unflipped).expect("well formed");
    assert_ne!(unflipped.recover(&digest.0).ok(), Some(signer));
    // s = n/2 is the largest low s; s = 2^255 has its top bit set.
    let mut boundary = sig;
    boundary.0[32..64].copy_from_slice(&hex::decode(HALF_ORDER).expect("hex"));
    assert!(boundary.recover(&digest).is_ok());
    let mut top = sig;
    top.0[32..64].fill(0);
    top.0[32] = 0x80;
    assert_eq!(top.recover(&digest), Err(SigError::HighBitS));
}

#[test]
fn a_transaction_with_a_high_s_signature_verifies() {
    // Transaction::verify needs only that some key is recoverable. (A spend check with a
    // hand-made high-s signature cannot be built: the output's address would have to be
    // known before the signature it determines.)
    let (mut tx, _, _) = signed_tx();
    let digest = tx.signing_hash(0).expect("input 0");
    let sig = high_s_sig(&digest);
    tx.sigs[0] = sig;
    assert_eq!(tx.verify(true), Ok(()));
    // Its top-bit-set form is refused.
    tx.sigs[0].0[32] |= 0x80;
    assert_eq!(
        tx.verify(true),
        Err(TxError::InvalidSignature {
            index: 0,
            source: SigError::HighBitS
        })
    );
}
