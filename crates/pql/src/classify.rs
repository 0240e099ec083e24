//! Evaluation-method classifier: batch, streaming or edge, per the 2025-05-20 rules
//! (aep-api.md §5.6–5.7).
//!
//! Eligible for streaming (and edge): profile-only; events only through `CHAIN` steps (or an
//! `exists`/`select`/filter over `xEvent`) whose time window is at most 24 hours before now
//! (`WHEN(today)`, `WHEN(<= 24 hours before now)`, ...), alone or with profile attributes;
//! segment of segments (`inSegment` with profile attributes); `inSegment` with 24-hour CHAIN
//! events (the documented workaround). Not eligible: an event without a window or with one over
//! 24 hours, event counts/sums/projections (frequency queries), an entirely negated event, and
//! for edge a single event combined with `inSegment` unless every referenced audience is
//! profile-only. Merge-policy and scheduling requirements are configuration, not expression,
//! properties: the segment service checks them.

use std::fmt;

use crate::ast::{CmpOp, Direction, Expr, OccursSpec, Quantifier, TimeRef, Unit};

/// The evaluation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Scheduled batch evaluation only.
    Batch,
    /// Continuous (streaming) evaluation.
    Streaming,
    /// Synchronous edge evaluation (also streaming-eligible).
    Edge,
}

impl Method {
    /// The word printed by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Batch => "batch",
            Method::Streaming => "streaming",
            Method::Edge => "edge",
        }
    }
}

/// What the caller knows about an audience referenced by `inSegment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudienceKind {
    /// Its expression uses profile attributes only.
    ProfileOnly,
    /// It uses events.
    Events,
}

/// The result: the most specific eligible method and why the others were ruled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Edge if edge-eligible, else streaming if streaming-eligible, else batch.
    pub method: Method,
    /// Why the expression is not streaming-eligible (empty when it is).
    pub not_streaming: Vec<String>,
    /// Why the expression is not edge-eligible (empty when it is).
    pub not_edge: Vec<String>,
    /// What kind of query this is (`profile only`, `single event`, ...).
    pub shape: String,
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.method.as_str(), self.shape)?;
        let reasons: Vec<&String> = match self.method {
            Method::Batch => self.not_streaming.iter().collect(),
            Method::Streaming => self.not_edge.iter().collect(),
            Method::Edge => Vec::new(),
        };
        for r in reasons {
            write!(f, "; {r}")?;
        }
        Ok(())
    }
}

const DAY_WINDOW_MS: i64 = 24 * 3_600_000;

/// Classifies with no knowledge of referenced audiences.
pub fn classify(expr: &Expr) -> Classification {
    classify_with(expr, &|_| None)
}

/// Classifies; `audience` tells what a referenced `inSegment` audience is, when known.
pub fn classify_with(
    expr: &Expr,
    audience: &dyn Fn(&str) -> Option<AudienceKind>,
) -> Classification {
    let mut facts = Facts::default();
    facts.visit(expr, false);
    let mut not_streaming = Vec::new();
    let mut not_edge = Vec::new();
    for p in &facts.problems {
        not_streaming.push(p.clone());
    }
    let has_events = facts.event_uses > 0;
    if has_events && !facts.segments.is_empty() {
        if facts.non_chain_event_uses > 0 {
            not_streaming.push(
                "an event combined with inSegment is only streaming-eligible as a CHAIN with a 24-hour window"
                    .to_owned(),
            );
        }
        let all_profile_only = facts
            .segments
            .iter()
            .all(|id| audience(id) == Some(AudienceKind::ProfileOnly));
        if !all_profile_only {
            not_edge.push(
                "an event combined with inSegment is edge-eligible only when the referenced audiences are profile-only"
                    .to_owned(),
            );
        }
    }
    not_edge.extend(not_streaming.iter().cloned());
    let shape = match (facts.steps, facts.segments.is_empty()) {
        (0, true) if !has_events => "profile only".to_owned(),
        (0, false) if !has_events => "segment of segments".to_owned(),
        (_, segs) => {
            let events = if facts.event_uses + facts.steps.saturating_sub(1) > 1 {
                "multiple events"
            } else {
                "single event"
            };
            let with_segments = if segs { "" } else { " with inSegment" };
            let with_profile = if facts.profile_fields {
                " and profile attributes"
            } else {
                ""
            };
            format!("{events}{with_profile}{with_segments}")
        }
    };
    let method = if not_edge.is_empty() {
        Method::Edge
    } else if not_streaming.is_empty() {
        Method::Streaming
    } else {
        Method::Batch
    };
    dedup(&mut not_streaming);
    dedup(&mut not_edge);
    Classification {
        method,
        not_streaming,
        not_edge,
        shape,
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = Vec::new();
    v.retain(|s| {
        let new = !seen.contains(s);
        seen.push(s.clone());
        new
    });
}

#[derive(Default)]
struct Facts {
    event_uses: usize,
    non_chain_event_uses: usize,
    steps: usize,
    segments: Vec<String>,
    profile_fields: bool,
    problems: Vec<String>,
}

fn is_xevent(e: &Expr) -> bool {
    matches!(e, Expr::Field { object, name } if name == "xEvent" && matches!(**object, Expr::Param { up: 0, .. }))
}

/// Length of a `WHEN`/`occurs` window ending now, if it is one of at most 24 hours.
fn window_within_a_day(spec: &OccursSpec) -> bool {
    match spec {
        OccursSpec::On(TimeRef::Today) => true,
        OccursSpec::Compare {
            op: CmpOp::Lt | CmpOp::Le,
            amount,
            unit,
            direction: Direction::Before,
            time: TimeRef::Now,
        } => {
            let per: i64 = match unit {
                Unit::Millisecond => 1,
                Unit::Second => 1000,
                Unit::Minute => 60_000,
                Unit::Hour => 3_600_000,
                Unit::Day => 86_400_000,
                _ => return false,
            };
            i64::try_from(*amount).is_ok_and(|a| a.saturating_mul(per) <= DAY_WINDOW_MS)
        }
        _ => false,
    }
}

/// Whether a condition bounds the event's `timestamp` to a 24-hour window (a conjunct).
fn condition_has_day_window(cond: &Expr) -> bool {
    match cond {
        Expr::Call { func, args } if func == "and" => args.iter().any(condition_has_day_window),
        Expr::Occurs { timestamp, spec } => {
            matches!(&**timestamp, Expr::Field { name, .. } if name == "timestamp")
                && window_within_a_day(spec)
        }
        _ => false,
    }
}

impl Facts {
    fn visit(&mut self, e: &Expr, negated: bool) {
        match e {
            Expr::Chain(chain) => {
                self.event_uses += 1;
                self.steps += chain.steps.len();
                if negated {
                    self.problems
                        .push("an entirely negated event is not streaming-eligible".to_owned());
                }
                for step in &chain.steps {
                    match &step.when {
                        None => self.problems.push(format!(
                            "CHAIN step {} has no time window (events need one of at most 24 hours)",
                            step.label
                        )),
                        Some(spec) if !window_within_a_day(spec) => self.problems.push(format!(
                            "CHAIN step {} has a time window longer than 24 hours or not ending now",
                            step.label
                        )),
                        Some(_) => {}
                    }
                    self.visit_inside_event(&step.what);
                }
            }
            Expr::Quant {
                kind: Quantifier::Exists | Quantifier::Select,
                bindings,
            } if bindings.first().is_some_and(|b| is_xevent(&b.source)) => {
                self.event_uses += 1;
                self.non_chain_event_uses += 1;
                if negated {
                    self.problems
                        .push("an entirely negated event is not streaming-eligible".to_owned());
                }
                let windowed = bindings
                    .first()
                    .and_then(|b| b.cond.as_ref())
                    .is_some_and(condition_has_day_window);
                if !windowed {
                    self.problems.push(
                        "an event condition without a time window of at most 24 hours".to_owned(),
                    );
                }
                for b in bindings {
                    if let Some(c) = &b.cond {
                        self.visit_inside_event(c);
                    }
                }
            }
            Expr::Filter { array, cond } if is_xevent(array) => {
                self.event_uses += 1;
                self.non_chain_event_uses += 1;
                if negated {
                    self.problems
                        .push("an entirely negated event is not streaming-eligible".to_owned());
                }
                if !condition_has_day_window(cond) {
                    self.problems.push(
                        "an event filter without a time window of at most 24 hours".to_owned(),
                    );
                }
                self.visit_inside_event(cond);
            }
            Expr::Call { func, args } if func == "not" => {
                for a in args {
                    self.visit(a, !negated);
                }
            }
            Expr::Call { func, args } if func == "inSegment" => {
                if let Some(Expr::Lit(crate::ast::Literal::Str(id))) = args.first() {
                    self.segments.push(id.clone());
                }
            }
            Expr::Call { func, args } => {
                // An event filter used as a value (count, sum, ...) is a frequency query.
                let aggregate =
                    matches!(args.first(), Some(Expr::Filter { array, .. }) if is_xevent(array));
                if aggregate {
                    self.problems.push(format!(
                        "`{func}` over events (frequency or aggregate) is batch-only"
                    ));
                }
                for a in args {
                    self.visit(a, negated);
                }
            }
            Expr::SumOver { source, .. } if is_xevent(source) => {
                self.event_uses += 1;
                self.non_chain_event_uses += 1;
                self.problems
                    .push("`sum ... over xEvent` (aggregate) is batch-only".to_owned());
            }
            Expr::Field { object, name } => {
                if is_xevent(e) {
                    self.event_uses += 1;
                    self.non_chain_event_uses += 1;
                    self.problems.push(
                        "events accessed without a CHAIN, filter or 24-hour window".to_owned(),
                    );
                } else if matches!(**object, Expr::Param { .. }) && name != "xEvent" {
                    self.profile_fields = true;
                } else {
                    self.visit(object, negated);
                }
            }
            // A CHAIN was handled above; everything else is looked through.
            other => {
                for c in other.children() {
                    self.visit(c, negated);
                }
            }
        }
    }

    /// Inside an event predicate fields belong to the event, not the profile.
    fn visit_inside_event(&mut self, e: &Expr) {
        let mut nested = Facts::default();
        nested.visit(e, false);
        self.segments.extend(nested.segments);
        self.problems.extend(nested.problems);
    }
}
