//! `/rollout`: the rollout as an operator follows it. The policy in force (the v3 share, the
//! per-package rules, halted or rolled back, the signing key and its endorsement, the
//! automation); a timeline of the v3 share with every change marked (who, when, why); and the
//! outcome reports of the automation's window, failures per 1,000 by format and phase, with the
//! automation's halts and rollbacks marked. Each chart has a table with the same figures.

use maud::{Markup, html};

use super::charts::{Chart, Line, Mark};
use super::{date, time};
use crate::fleet::{Overview, PHASES, Step};
use crate::package::WebcVersion;

/// The whole page's body.
pub(super) fn body(o: &Overview) -> Markup {
    html! {
        h1 { "Rollout" }
        (policy_now(o))
        (timeline(o))
        (outcomes(o))
    }
}

/// The share of machines that put v3 first after `step` (none while rolled back).
fn share(step: &Step) -> f64 {
    if step.rolled_back {
        0.0
    } else {
        f64::from(step.v3_percent)
    }
}

/// "v7, 2026-12-07 13:20 UTC, by ops: set v3_percent 30 (canary is fine)".
fn describe(step: &Step) -> String {
    let r = &step.record;
    format!(
        "v{}, {} UTC, by {}: {} ({})",
        r.policy_version,
        time(r.at),
        r.actor,
        r.action,
        r.reason
    )
}

fn policy_now(o: &Overview) -> Markup {
    let p = &o.policy;
    let state = if p.rolled_back {
        "rolled back: every machine puts v2 first"
    } else if p.halted {
        "halted: the share may go down, not up, until resume"
    } else {
        "moving"
    };
    html! {
        section #policy {
            h2 { "Policy in force" }
            @if p.policy_version == 0 {
                p.muted { "None published: clients follow their own settings." }
            } @else {
                dl {
                    dt { "Policy" } dd { "v" (p.policy_version) }
                    dt { "WebC v3 first" } dd { (p.v3_percent) "% of machines" }
                    dt { "State" } dd.state { (state) }
                    @for (name, rule) in &p.packages {
                        dt { code { (name) } }
                        dd {
                            @if let Some(webc) = rule.webc { (webc.as_str()) " for every machine" }
                            @else if let Some(percent) = rule.v3_percent { "v3 first on " (percent) "%" }
                        }
                    }
                    dt { "Signed by" }
                    dd {
                        @match &o.signing_key {
                            Some((key, Some(until))) => { code { (key[..16.min(key.len())]) "…" } ", endorsed until " (date(*until)) }
                            Some((key, None)) => { code { (key[..16.min(key.len())]) "…" } " (the root itself)" }
                            None => { "no key: the policy is not served" }
                        }
                    }
                    dt { "Automation" }
                    dd { (o.automation) }
                }
            }
        }
    }
}

fn timeline(o: &Overview) -> Markup {
    let Some(first) = o.steps.first() else {
        return html! { section #timeline { h2 { "Timeline" } p.muted { "No changes yet." } } };
    };
    // A little room before the first change, so that it is not on the axis.
    let from = first.record.at - ((o.now - first.record.at) / 10).max(30);
    let chart = Chart {
        label: format!(
            "The share of machines that put WebC v3 first, from {} to {}, with {} changes marked",
            date(from),
            date(o.now),
            o.steps.len()
        ),
        from,
        to: o.now,
        top: 100.0,
        unit: "%",
        lines: vec![Line {
            name: "v3 first, % of machines".into(),
            class: "v3",
            points: o.steps.iter().map(|s| (s.record.at, share(s))).collect(),
            step: true,
        }],
        marks: o
            .steps
            .iter()
            .map(|s| Mark {
                at: s.record.at,
                value: share(s),
                class: if s.automatic() { "automatic" } else { "manual" },
                title: describe(s),
            })
            .collect(),
    };
    html! {
        section #timeline {
            h2 { "Timeline" }
            (chart.svg())
            p.muted.legend { "Each dot is a change; red ones were made by the automation." }
            div.scroll {
                table {
                    caption { "Every change, newest first" }
                    thead { tr { th { "Policy" } th { "When (UTC)" } th { "Who" } th { "What" } th { "Why" } th { "v3 first" } } }
                    tbody {
                        @for s in o.steps.iter().rev() {
                            tr class=(if s.automatic() { "automatic" } else { "manual" }) {
                                td { "v" (s.record.policy_version) }
                                td { (time(s.record.at)) }
                                td { (s.record.actor) }
                                td { (s.record.action) }
                                td { (s.record.reason) }
                                td { (share(s)) "%" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn outcomes(o: &Overview) -> Markup {
    if o.sum().reports == 0 {
        return html! { section #outcomes { h2 { "Outcome rates" } p.muted { "No outcome reports yet." } } };
    }
    let window = o.automation.window.as_secs();
    let from = o.buckets.first().map_or(o.now, |b| b.start);
    let lines = rate_lines(o);
    let highest = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let top = nice_top(highest);
    let chart = Chart {
        label: format!(
            "Failures per 1,000 reports, v2 against v3, install and run, over the last {window} s"
        ),
        from,
        to: o.now,
        top,
        unit: "‰",
        lines,
        marks: o
            .steps
            .iter()
            .filter(|s| s.automatic() && s.record.at >= from)
            .map(|s| Mark {
                at: s.record.at,
                value: top,
                class: "automatic",
                title: describe(s),
            })
            .collect(),
    };
    html! {
        section #outcomes {
            h2 { "Outcome rates" }
            (chart.svg())
            p.muted.legend {
                span.key.v2 { "v2" } " and " span.key.v3 { "v3" } ": failures per 1,000 reports in each of the window's slices; dashed: install, solid: run; red dots: the automation's halts and rollbacks."
            }
            (rates_table(o, window))
        }
    }
}

/// A line per format and phase: failures per 1,000 in each slice that has reports.
fn rate_lines(o: &Overview) -> Vec<Line> {
    let mut lines = Vec::new();
    for (f, webc) in WebcVersion::ALL.iter().enumerate() {
        for (p, phase) in PHASES.iter().enumerate() {
            lines.push(Line {
                name: format!("{} {phase}: failures per 1,000", webc.as_str()),
                class: match (webc, *phase) {
                    (WebcVersion::V2, "install") => "v2 install",
                    (WebcVersion::V2, _) => "v2",
                    (WebcVersion::V3, "install") => "v3 install",
                    (WebcVersion::V3, _) => "v3",
                },
                points: o
                    .buckets
                    .iter()
                    .filter_map(|b| b.counts[f][p].per_thousand().map(|v| (b.start, v)))
                    .collect(),
                step: false,
            });
        }
    }
    lines
}

/// The window's reports in all, per format and phase.
fn rates_table(o: &Overview, window: u64) -> Markup {
    let totals = o.totals();
    html! {
        div.scroll {
            table {
                caption { "Over the last " (window) " s" }
                thead { tr { th { "Format" } th { "Phase" } th { "Reports" } th { "Failures" } th { "Per 1,000" } } }
                tbody {
                    @for (f, webc) in WebcVersion::ALL.iter().enumerate() {
                        @for (p, phase) in PHASES.iter().enumerate() {
                            @let c = totals[f][p];
                            tr {
                                td { (webc.as_str()) } td { (phase) } td { (c.reports) } td { (c.failures) }
                                td { (c.per_thousand().map_or("–".to_string(), |v| format!("{v:.1}"))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A round top for a rate axis: 10, 20, 50, 100, 200, 500 or 1,000 per 1,000.
fn nice_top(highest: f64) -> f64 {
    [10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        .into_iter()
        .find(|t| highest <= *t)
        .unwrap_or(1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_axes_round_up() {
        assert_eq!(nice_top(0.0), 10.0);
        assert_eq!(nice_top(11.0), 20.0);
        assert_eq!(nice_top(999.0), 1000.0);
    }
}
