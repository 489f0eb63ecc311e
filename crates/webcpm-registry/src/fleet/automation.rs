//! The registry halting or rolling back a bad v3 by itself: after each batch of reports, the
//! failure rates of the window are compared, per package and overall. When both formats have at
//! least `min_samples` clients reporting and v3 fails on more of them than v2 does by more than
//! `threshold` percentage points (clients, not reports: see `outcomes.rs`), the chosen action is taken and logged with the numbers that caused it.
//!
//! [`decide`] is pure. It only ever returns changes that move clients toward v2 (a halt, a
//! rollback, a package set to v2): raising a percentage is a human action. With too few samples,
//! or nothing left to do, it returns nothing.

use super::outcomes::{Rates, Window};
use super::state::{Automation, Change, OnRegression, PolicyState};
use crate::package::{PackageName, WebcVersion};

/// Why v3 looks worse than v2 in `rates`, if it does.
fn regression(rates: &Rates, a: &Automation) -> Option<String> {
    let min = u64::from(a.min_samples);
    if rates.v3.clients < min || rates.v2.clients < min {
        return None;
    }
    let (v3, v2) = (rates.v3.percent(), rates.v2.percent());
    (v3 - v2 > a.threshold).then(|| {
        format!(
            "v3 failed on {v3:.1}% of {} clients, v2 on {v2:.1}% of {} (threshold {} points)",
            rates.v3.clients, rates.v2.clients, a.threshold
        )
    })
}

/// The change to make, and why, or nothing.
pub(super) fn decide(
    window: &Window,
    a: &Automation,
    state: &PolicyState,
) -> Option<(Change, String)> {
    if a.on_regression == OnRegression::Off || state.rolled_back {
        return None;
    }
    let seconds = window.seconds;
    if let Some(why) = regression(&window.overall, a) {
        let change = match a.on_regression {
            OnRegression::Rollback => Change::Rollback,
            _ if state.halted => return None,
            _ => Change::Halt,
        };
        return Some((
            change,
            format!("automatic: overall, {why}, over {seconds} s"),
        ));
    }
    for (package, rates) in &window.packages {
        let Some(why) = regression(rates, a) else {
            continue;
        };
        let Ok(name) = package.parse::<PackageName>() else {
            continue;
        };
        let rule = state.packages.get(package.as_str());
        let change = match a.on_regression {
            OnRegression::Rollback if rule.and_then(|r| r.webc) != Some(WebcVersion::V2) => {
                Change::Format {
                    package: name,
                    webc: WebcVersion::V2,
                }
            }
            OnRegression::Halt if !state.halted => Change::Halt,
            _ => continue,
        };
        return Some((
            change,
            format!("automatic: {package}, {why}, over {seconds} s"),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::outcomes::Rate;
    use super::*;

    fn window(v2: (u64, u64), v3: (u64, u64)) -> Window {
        let rates = Rates {
            v2: Rate {
                reports: v2.0,
                failures: v2.1,
                clients: v2.0,
                failing_clients: v2.1,
            },
            v3: Rate {
                reports: v3.0,
                failures: v3.1,
                clients: v3.0,
                failing_clients: v3.1,
            },
        };
        Window {
            seconds: 60,
            overall: rates,
            packages: [("ns/p".to_string(), rates)].into(),
        }
    }

    #[test]
    fn acts_only_with_enough_samples_and_a_real_regression() {
        let a = Automation::default();
        let state = PolicyState::default();
        assert!(
            decide(&window((100, 0), (5, 5)), &a, &state).is_none(),
            "too few"
        );
        assert!(
            decide(&window((100, 5), (100, 8)), &a, &state).is_none(),
            "within threshold"
        );
        let (change, why) = decide(&window((100, 0), (50, 50)), &a, &state).unwrap();
        assert_eq!(change, Change::Halt);
        assert!(why.contains("100.0%"), "{why}");
        let halted = PolicyState {
            halted: true,
            ..state.clone()
        };
        assert!(decide(&window((100, 0), (50, 50)), &a, &halted).is_none());
        let rollback = Automation {
            on_regression: OnRegression::Rollback,
            ..a
        };
        let (change, _) = decide(&window((100, 0), (50, 50)), &rollback, &halted).unwrap();
        assert_eq!(change, Change::Rollback);
        let off = Automation {
            on_regression: OnRegression::Off,
            ..a
        };
        assert!(decide(&window((100, 0), (50, 50)), &off, &state).is_none());
    }

    #[test]
    fn every_decision_moves_toward_v2() {
        for on_regression in [OnRegression::Halt, OnRegression::Rollback] {
            let a = Automation {
                on_regression,
                ..Automation::default()
            };
            for (v2, v3) in [((50, 0), (50, 50)), ((30, 1), (40, 20))] {
                if let Some((change, _)) = decide(&window(v2, v3), &a, &PolicyState::default()) {
                    assert!(change.toward_v2(), "{change:?}");
                }
            }
        }
    }
}
