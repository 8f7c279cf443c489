//! Coin hours and fees: Skycoin's own test tables (`src/coin/outputs_test.go`,
//! `src/util/fee/fee_test.go`) and its error cases.

use skywire_coin::fee::{
    DEFAULT_BURN_FACTOR, FeeError, SKYCOIN_BURN_FACTOR, remaining_hours, required_fee,
    transaction_fee, verify_fee, verify_transaction_fee,
};
use skywire_coin::ux::total_coin_hours;
use skywire_coin::{Hash, HoursError, Output, Transaction, UxBody, UxHead, UxOut, null_address};

/// Skycoin's `makeUxOut`: head time 100, 1 coin, 100 hours.
fn ux(coins: u64, hours: u64) -> UxOut {
    UxOut {
        head: UxHead {
            time: 100,
            bk_seq: 2,
        },
        body: UxBody {
            src_transaction: skywire_coin::sha256(b"source"),
            address: null_address(),
            coins,
            hours,
        },
    }
}

#[test]
fn coin_hours_table() {
    // (coins, seconds elapsed, hours gained), head time 100, 100 starting hours.
    let table: &[(u64, u64, u64)] = &[
        (1_000_000, 100, 0),
        (1_000_000, 3600, 1),
        (1_000_000, 6 * 3600, 6),
        (1_500_000, 3600, 1),
        (1_500_000, 2 * 3600, 3),
        (3_600_000_000, 1, 1),
        (1, 1_000_000 * 3600 - 1, 0),
        (1, 1_000_000 * 3600, 1),
        (1, 1_000_000 * 3600 + 1, 1),
        // The genesis output: 1e14 droplets and hours, one hour later.
        (100_000_000_000_000, 0, 0),
        (100_000_000_000_000, 3600, 100_000_000),
    ];
    for &(coins, seconds, gained) in table {
        let output = ux(coins, 100);
        assert_eq!(
            output.coin_hours(100 + seconds),
            Ok(100 + gained),
            "coins {coins}, {seconds} s"
        );
    }
    // No hours to begin with, no time passed.
    assert_eq!(ux(1_000_000, 0).coin_hours(100), Ok(0));
}

#[test]
fn time_before_the_output_gives_its_hours_unchanged() {
    let output = ux(1_000_000_000, 100);
    assert_eq!(output.coin_hours(50), Ok(100));
    assert_eq!(output.coin_hours(0), Ok(100));
    // Even for an output whose earned hours would overflow.
    assert_eq!(ux(u64::MAX, u64::MAX).coin_hours(99), Ok(u64::MAX));
}

#[test]
fn whole_coin_seconds_overflow() {
    let output = ux(2_000_000, 100);
    assert_eq!(
        output.coin_hours(u64::MAX),
        Err(HoursError::WholeCoinSecondsOverflow {
            seconds: 18_446_744_073_709_551_515,
            coins: 2,
            uxid: output.hash()
        })
    );
    let text = output
        .coin_hours(u64::MAX)
        .expect_err("overflow")
        .to_string();
    assert!(
        text.starts_with(
            "calculating whole coin seconds overflows uint64 seconds=18446744073709551515 coins=2 uxid="
        ),
        "{text}"
    );
}

#[test]
fn droplet_seconds_overflow() {
    let output = ux(1_100_000, 100);
    assert_eq!(
        output.coin_hours(u64::MAX),
        Err(HoursError::DropletSecondsOverflow {
            seconds: 18_446_744_073_709_551_515,
            droplets: 100_000,
            uxid: output.hash()
        })
    );
}

#[test]
fn earned_hours_addition_overflow() {
    let output = ux(3_600_000_000, u64::MAX - 1);
    assert_eq!(
        output.coin_hours(100 + 1000),
        Err(HoursError::EarnedHoursOverflow {
            uxid: output.hash()
        })
    );
    // One hour short of the limit is fine: 3600 coins for 1 s earn exactly one hour.
    assert_eq!(
        ux(3_600_000_000, u64::MAX - 1).coin_hours(101),
        Ok(u64::MAX)
    );
}

#[test]
fn coin_seconds_sum_wraps_like_go() {
    // 1.000001 coins held for u64::MAX − 5 seconds: both products fit, their sum
    // (whole-coin seconds + droplet seconds / 1e6) wraps in Skycoin's Go; a checked
    // addition would fail here instead.
    let output = UxOut {
        head: UxHead { time: 0, bk_seq: 1 },
        body: UxBody {
            coins: 1_000_001,
            hours: 7,
            ..ux(0, 0).body
        },
    };
    // (u64::MAX − 5 + (u64::MAX − 5) / 1e6) mod 2^64 = 18446744073703; / 3600 = 5124095576.
    assert_eq!(output.coin_hours(u64::MAX - 5), Ok(7 + 5_124_095_576));
}

#[test]
fn total_coin_hours_of_several_outputs() {
    // Skycoin's TestUxArrayCoinHours: four outputs of 1 coin and 100 hours.
    let outputs = vec![ux(1_000_000, 100); 4];
    assert_eq!(total_coin_hours(&outputs, 100), Ok(400));
    assert_eq!(total_coin_hours(&outputs, 100 + 3600), Ok(404));
    assert_eq!(total_coin_hours(&outputs, 100 + 3600 + 1800), Ok(404));
    assert_eq!(total_coin_hours(&outputs, 100 + 3600 + 4600), Ok(408));
    let mut big = outputs.clone();
    big[2].body.hours = u64::MAX - 100;
    assert_eq!(total_coin_hours(&big, 100), Err(HoursError::TotalOverflow));
    assert!(matches!(
        total_coin_hours(&big, 100 * 1_000_000_000_000),
        Err(HoursError::EarnedHoursOverflow { .. })
    ));
}

#[test]
fn required_fee_tables() {
    let burn_factor_2: &[(u64, u64)] = &[
        (0, 0),
        (1, 1),
        (2, 1),
        (3, 2),
        (4, 2),
        (5, 3),
        (6, 3),
        (7, 4),
        (998, 499),
        (999, 500),
        (1000, 500),
        (1001, 501),
    ];
    let burn_factor_3: &[(u64, u64)] = &[
        (0, 0),
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 2),
        (5, 2),
        (6, 2),
        (7, 3),
        (999, 333),
        (1000, 334),
        (1001, 334),
        (1002, 334),
        (1003, 335),
    ];
    let burn_factor_10: &[(u64, u64)] = &[
        (0, 0),
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 1),
        (5, 1),
        (6, 1),
        (7, 1),
        (8, 1),
        (9, 1),
        (10, 1),
        (11, 2),
        (19, 2),
        (20, 2),
        (21, 3),
        (999, 100),
        (1000, 100),
        (1001, 101),
        (1002, 101),
        (1003, 101),
    ];
    for (burn_factor, table) in [(2, burn_factor_2), (3, burn_factor_3), (10, burn_factor_10)] {
        for &(hours, fee) in table {
            assert_eq!(
                required_fee(hours, burn_factor),
                fee,
                "burn factor {burn_factor}, {hours} hours"
            );
            assert_eq!(remaining_hours(hours, burn_factor), hours - fee);
        }
    }
    assert_eq!(DEFAULT_BURN_FACTOR, 2);
    assert_eq!(SKYCOIN_BURN_FACTOR, 10);
}

/// `(input hours, output hours, expected)`; `None` means accepted.
type FeeCase = (u64, u64, Option<&'static str>);

const NO_FEE: Option<&str> = Some("no fee");
const LOW: Option<&str> = Some("insufficient");

#[test]
fn verify_fee_tables() {
    let burn_factor_2: &[FeeCase] = &[
        (0, 0, NO_FEE),
        (1, 0, None),
        (1, 1, NO_FEE),
        (2, 0, None),
        (2, 1, None),
        (2, 2, NO_FEE),
        (3, 0, None),
        (3, 1, None),
        (3, 2, LOW),
        (3, 3, NO_FEE),
        (4, 0, None),
        (4, 1, None),
        (4, 2, None),
        (4, 3, LOW),
        (4, 4, NO_FEE),
    ];
    let burn_factor_3: &[FeeCase] = &[
        (0, 0, NO_FEE),
        (1, 0, None),
        (1, 1, NO_FEE),
        (2, 0, None),
        (2, 1, None),
        (2, 2, NO_FEE),
        (3, 0, None),
        (3, 1, None),
        (3, 2, None),
        (3, 3, NO_FEE),
        (4, 0, None),
        (4, 1, None),
        (4, 2, None),
        (4, 3, LOW),
        (4, 4, NO_FEE),
        (5, 0, None),
        (5, 1, None),
        (5, 2, None),
        (5, 3, None),
        (5, 4, LOW),
        (5, 5, NO_FEE),
    ];
    let burn_factor_10: &[FeeCase] = &[
        (0, 0, NO_FEE),
        (1, 0, None),
        (1, 1, NO_FEE),
        (2, 0, None),
        (2, 1, None),
        (2, 2, NO_FEE),
        (3, 0, None),
        (3, 1, None),
        (3, 2, None),
        (3, 3, NO_FEE),
        (4, 0, None),
        (4, 1, None),
        (4, 2, None),
        (4, 3, None),
        (4, 4, NO_FEE),
        (5, 0, None),
        (5, 1, None),
        (5, 2, None),
        (5, 3, None),
        (5, 4, None),
        (5, 5, NO_FEE),
        (9, 8, None),
        (9, 9, NO_FEE),
        (10, 5, None),
        (10, 9, None),
        (10, 10, NO_FEE),
        (11, 9, None),
        (11, 10, LOW),
        (11, 11, NO_FEE),
        (19, 17, None),
        (19, 18, LOW),
        (19, 19, NO_FEE),
        (20, 18, None),
        (20, 19, LOW),
        (20, 20, NO_FEE),
    ];
    for (burn_factor, table) in [(2, burn_factor_2), (3, burn_factor_3), (10, burn_factor_10)] {
        for &(input, output, expected) in table {
            let fee = input - output;
            let result = verify_fee(output, fee, burn_factor);
            let name = format!("burn factor {burn_factor}, in {input}, out {output}");
            match expected {
                None => assert_eq!(result, Ok(()), "{name}"),
                Some("no fee") => assert_eq!(result, Err(FeeError::NoFee), "{name}"),
                Some(_) => assert_eq!(
                    result,
                    Err(FeeError::InsufficientFee {
                        fee,
                        required: required_fee(input, burn_factor)
                    }),
                    "{name}"
                ),
            }
            // The same through a transaction with one output of `output` hours.
            let tx = Transaction {
                outputs: vec![Output {
                    address: null_address(),
                    coins: 1,
                    hours: output,
                }],
                ..Transaction::default()
            };
            assert_eq!(verify_transaction_fee(&tx, fee, burn_factor), result);
        }
    }
}

#[test]
fn verify_fee_errors() {
    // Skycoin's TestVerifyTransactionFee: outputs of 1e6 and 3e6 hours, burn factor 2.
    let mut tx = Transaction {
        outputs: vec![
            Output {
                address: null_address(),
                coins: 1,
                hours: 1_000_000,
            },
            Output {
                address: null_address(),
                coins: 1,
                hours: 3_000_000,
            },
        ],
        ..Transaction::default()
    };
    assert_eq!(verify_transaction_fee(&tx, 0, 2), Err(FeeError::NoFee));
    assert!(matches!(
        verify_transaction_fee(&tx, 1, 2),
        Err(FeeError::InsufficientFee { fee: 1, .. })
    ));
    assert_eq!(verify_transaction_fee(&tx, 4_000_000, 2), Ok(()));
    assert_eq!(verify_transaction_fee(&tx, 40_000_000, 2), Ok(()));
    assert_eq!(
        verify_transaction_fee(&tx, u64::MAX - 3_000_000, 2),
        Err(FeeError::HoursFeeOverflow {
            hours: 4_000_000,
            fee: u64::MAX - 3_000_000
        })
    );
    tx.outputs.push(Output {
        address: null_address(),
        coins: 1,
        hours: u64::MAX - 1_000_000 - 3_000_000 + 1,
    });
    assert_eq!(
        verify_transaction_fee(&tx, 10, 2),
        Err(FeeError::OutputHoursOverflow)
    );
    // An empty transaction with a fee is fine as far as fees go.
    assert_eq!(
        verify_transaction_fee(&Transaction::default(), 100, 2),
        Ok(())
    );
}

#[test]
fn transaction_fee_cases() {
    // Skycoin's TestTransactionFee.
    let head_time = 1000;
    let next_time = head_time + 3600;
    let input = |time, coins, hours| UxOut {
        head: UxHead { time, bk_seq: 1 },
        body: UxBody {
            src_transaction: Hash::ZERO,
            address: null_address(),
            coins,
            hours,
        },
    };
    let tx_with = |hours: &[u64]| Transaction {
        outputs: hours
            .iter()
            .map(|&hours| Output {
                address: null_address(),
                coins: 1,
                hours,
            })
            .collect(),
        ..Transaction::default()
    };

    assert_eq!(
        transaction_fee(
            &tx_with(&[5]),
            head_time,
            &[input(head_time, 10_000_000, 10)]
        ),
        Ok(5)
    );
    assert_eq!(
        transaction_fee(
            &tx_with(&[5, 7, 3]),
            head_time,
            &[
                input(head_time, 10_000_000, 10),
                input(head_time, 10_000_000, 5)
            ]
        ),
        Ok(0)
    );
    assert_eq!(
        transaction_fee(
            &tx_with(&[5, 10]),
            next_time,
            &[
                input(next_time, 10_000_000, 10),
                input(head_time, 8_000_000, 5)
            ]
        ),
        Ok(8)
    );
    assert_eq!(
        transaction_fee(
            &tx_with(&[5, 10, 1]),
            head_time,
            &[
                input(head_time, 10_000_000, 10),
                input(head_time, 8_000_000, 5)
            ]
        ),
        Err(FeeError::InsufficientCoinHours {
            input: 15,
            output: 16
        })
    );
    assert_eq!(
        transaction_fee(
            &tx_with(&[0]),
            head_time,
            &[
                input(head_time, 10_000_000, 10),
                input(head_time, 10_000_000, u64::MAX - 9)
            ]
        ),
        Err(FeeError::InputHours(HoursError::TotalOverflow))
    );
    assert_eq!(
        transaction_fee(
            &tx_with(&[0, 10, u64::MAX - 9]),
            head_time,
            &[
                input(head_time, 10_000_000, 10),
                input(head_time, 10_000_000, 100)
            ]
        ),
        Err(FeeError::OutputHoursOverflow)
    );
}
